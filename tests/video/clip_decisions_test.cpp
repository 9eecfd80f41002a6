// Clip decisions (video/clip_decisions.h) on hand-written clip records: each filter's threshold
// applied to the recorded scores and the reason it gives, the motion filter's size rule, failed
// transcodes, and dedup keeping the clip with the most pixels x frames.
#include "foundry/video/clip_decisions.h"

#include "testing.h"

namespace foundry::video {
namespace {

using json = nlohmann::json;

// A 2 s 640x360 clip (from a 1280x720 source) that passes every default filter.
json good_clip(const std::string& id, const std::string& hash = "0123456789abcdef") {
  json hashes = json::array();
  for (int i = 0; i < 4; ++i) hashes.push_back(hash);
  return {{"clip", id}, {"duration", 2.0}, {"width", 640}, {"height", 360}, {"frames", 48},
          {"source_width", 1280}, {"source_height", 720},
          {"scores", {{"static_blank", {{"frames", 48}, {"mean_luma_std", 30.0}, {"blank_fraction", 0.0},
                                        {"mean_frame_difference", 5.0}, {"max_frame_difference", 6.0}}},
                      {"motion", {{"global_mean", 0.01}, {"per_patch_min_256", 0.005}, {"frames_sampled", 4},
                                  {"method", "motion_vectors"}}}}},
          {"fingerprint", hashes}};
}

std::vector<std::string> keys(const json& clip) {
  std::vector<std::string> out;
  for (const auto& r : clip["drop_reasons"]) out.push_back(reason_key(r.get<std::string>()));
  return out;
}

CurateConfig config(const std::vector<std::string>& overrides = {}) { return CurateConfig::parse("", "t", overrides); }

TEST(ClipDecisions, EachFilterOnItsRecordedScore) {
  std::vector<json> clips = {good_clip("ok", "0000000000000000"), good_clip("short", "00000000ffffffff"),
                             good_clip("tall", "ffffffff00000000"), good_clip("still", "ffffffffffffffff"),
                             good_clip("small", "0f0f0f0f0f0f0f0f"), good_clip("broken")};
  clips[1]["duration"] = 1.0;
  clips[2]["source_width"] = 720, clips[2]["source_height"] = 1280;
  clips[3]["scores"]["static_blank"]["mean_frame_difference"] = 0.1;
  clips[3]["scores"]["motion"]["global_mean"] = 0.0;
  clips[4]["width"] = 320, clips[4]["height"] = 180;
  clips[5]["error"] = "no frame decoded";
  decide_clips(clips, config({"filter.min_duration_s=1.5", "filter.min_aspect=1.0"}));
  EXPECT_TRUE(clips[0]["kept"].get<bool>()) << clips[0]["drop_reasons"];
  EXPECT_EQ(keys(clips[1]), std::vector<std::string>{"duration"});
  EXPECT_EQ(keys(clips[2]), std::vector<std::string>{"aspect_ratio"});
  EXPECT_EQ(keys(clips[3]), (std::vector<std::string>{"static", "low_motion"}));
  EXPECT_EQ(keys(clips[4]), std::vector<std::string>{"low_motion"});  // under 256 px: not scored upstream
  EXPECT_NE(clips[4]["drop_reasons"][0].get<std::string>().find("320x180"), std::string::npos);
  EXPECT_EQ(keys(clips[5]), std::vector<std::string>{"transcode_failed"});
  for (const json& c : clips) EXPECT_EQ(c["kept"].get<bool>(), c["drop_reasons"].empty());

  // The same records under other thresholds: only the decisions change.
  decide_clips(clips, config({"filter.motion=false", "filter.static_blank=false", "filter.min_short_side=1000"}));
  EXPECT_EQ(keys(clips[0]), std::vector<std::string>{"resolution"});
  EXPECT_EQ(keys(clips[1]), std::vector<std::string>{"resolution"});
  EXPECT_EQ(keys(clips[3]), std::vector<std::string>{"resolution"});
  decide_clips(clips, config({"filter.motion=false", "filter.static_blank=false"}));
  for (size_t i = 0; i < 5; ++i) EXPECT_TRUE(clips[i]["kept"].get<bool>()) << i;
}

TEST(ClipDecisions, DuplicatesKeepTheMostPixelsTimesFrames) {
  std::vector<json> clips = {good_clip("a"), good_clip("b"), good_clip("c"), good_clip("other", "fedcba9876543210")};
  clips[1]["frames"] = 96;  // the longest copy wins
  clips[2]["scores"]["static_blank"]["mean_frame_difference"] = 0.0;  // dropped by a filter: not in dedup
  decide_clips(clips, config());
  EXPECT_FALSE(clips[0]["kept"].get<bool>());
  EXPECT_EQ(clips[0]["duplicate_of"], "b");
  EXPECT_TRUE(clips[1]["kept"].get<bool>());
  EXPECT_EQ(clips[0]["dedup_group"], clips[1]["dedup_group"]);
  EXPECT_TRUE(clips[2]["dedup_group"].is_null());
  EXPECT_EQ(keys(clips[2]), std::vector<std::string>{"static"});
  EXPECT_TRUE(clips[3]["kept"].get<bool>());
  EXPECT_NE(clips[3]["dedup_group"], clips[1]["dedup_group"]);
  decide_clips(clips, config({"dedup.enabled=false"}));
  EXPECT_TRUE(clips[0]["kept"].get<bool>());
  EXPECT_TRUE(clips[0]["dedup_group"].is_null());
}

}  // namespace
}  // namespace foundry::video
