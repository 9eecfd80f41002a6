// The curation pipeline end to end (video/curation_pipeline.h) on synthetic videos made here with
// libavcodec, whose right answers are known by construction:
//   shots.mp4   four shots with cuts at frames 80, 160 and 240: moving stripes, a static texture,
//               other moving stripes, then black frames (24 fps, 320x256: the motion filter wants 256 px);
//   reencode.mkv the first 80 frames of shots.mp4 encoded again at another quality (a duplicate);
//   truncated.mkv the first two shots in Matroska, cut at 60% of its bytes (damaged: reported and skipped);
//   notes.mp4    text, not a video (reported and skipped).
// Checked: cuts at exactly the known frames; clip spans and durations as the cosmos-curate rules
// say; the static and the blank clip dropped with their reasons; the duplicate grouped with its
// original and dropped; the damaged and unreadable inputs reported while the others go on;
// shards holding exactly the kept clips; a re-run resuming without decoding, re-applying changed
// thresholds, and re-processing a video whose record was never finished.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "foundry/checkpoint/durable_io.h"
#include "foundry/video/curation_pipeline.h"
#include "foundry/video/video_writer.h"
#include "testing.h"

namespace foundry::video {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kW = 320, kH = 256, kFps = 24, kShotLen = 80, kShots = 4;

fs::path scratch() {
  static const fs::path d = fs::path(::testing::TempDir()) / ("foundry_curate_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// Frame t of shots.mp4 (BGR24): textures of a few spatial frequencies (so that re-encoding
// moves few pHash bits) over a colour field per shot.
std::vector<uint8_t> shot_frame(int t) {
  const int shot = t / kShotLen;
  const uint8_t field[3][3] = {{200, 90, 40}, {40, 60, 190}, {60, 180, 70}};
  std::vector<uint8_t> f(size_t(kW) * kH * 3, 0);
  if (shot >= 3) return f;  // black
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      double v = 0;
      if (shot == 0) {  // moving right, 2 px a frame
        const double u = x - 2.0 * t;
        v = 35 * std::sin(2 * M_PI * u / 64) + 25 * std::sin(2 * M_PI * y / 45 + 1) + 20 * std::sin(2 * M_PI * (u + y) / 90);
      } else if (shot == 1) {  // still
        v = 35 * std::sin(2 * M_PI * x / 53) * std::cos(2 * M_PI * y / 41) + 25 * std::sin(2 * M_PI * (x - y) / 70);
      } else {  // moving up, 2 px a frame
        const double w = y + 2.0 * t;
        v = 35 * std::sin(2 * M_PI * w / 58) + 25 * std::cos(2 * M_PI * x / 77) + 20 * std::sin(2 * M_PI * (x - w) / 83);
      }
      uint8_t* p = &f[(size_t(y) * kW + x) * 3];
      for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(std::clamp(field[shot][c] + v, 0.0, 255.0));
    }
  return f;
}

std::string write_video(const std::string& name, int frames, int crf) {
  const std::string path = (scratch() / name).string();
  VideoWriter w(path, {.width = kW, .height = kH, .fps = {kFps, 1}, .crf = crf});
  for (int t = 0; t < frames; ++t) w.write(shot_frame(t).data());
  w.close();
  return path;
}

struct Inputs {
  std::string shots, reencode, truncated, notes;
};

const Inputs& inputs() {
  static const Inputs in = [] {
    Inputs i;
    i.shots = write_video("shots.mp4", kShots * kShotLen, 18);
    i.reencode = write_video("reencode.mkv", kShotLen, 30);
    i.truncated = write_video("truncated.mkv", 2 * kShotLen, 18);  // Matroska: opens when cut short
    fs::resize_file(i.truncated, fs::file_size(i.truncated) * 6 / 10);
    i.notes = (scratch() / "notes.mp4").string();
    std::ofstream(i.notes) << "not a video\n";
    return i;
  }();
  return in;
}

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

const json& clip_at(const std::vector<json>& clips, const std::string& video, int64_t start) {
  for (const json& c : clips)
    if (c["video"] == video && c["start_frame"] == start) return c;
  ADD_FAILURE() << "no clip of " << video << " starting at " << start;
  static const json none;
  return none;
}

// The member names of a tar file, as /usr/bin/tar lists them (an independent reader).
std::vector<std::string> tar_members(const std::string& path) {
  std::vector<std::string> names;
  FILE* p = ::popen(("tar -tf '" + path + "'").c_str(), "r");
  if (p == nullptr) return names;
  char line[4096];
  while (std::fgets(line, sizeof line, p)) {
    std::string name(line);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
    names.push_back(name);
  }
  EXPECT_EQ(::pclose(p), 0) << "tar -tf " << path;
  return names;
}

bool has_reason(const json& clip, const std::string& key) {
  for (const auto& r : clip["drop_reasons"])
    if (r.get<std::string>().rfind(key + ":", 0) == 0) return true;
  return false;
}

CurateConfig config(const std::vector<std::string>& overrides = {}) {
  std::vector<std::string> o = {"run.workers=2"};
  o.insert(o.end(), overrides.begin(), overrides.end());
  return CurateConfig::parse("", "test", o);
}

TEST(CurationPipeline, ShotsClipsFiltersDedupAndShards) {
  const Inputs& in = inputs();
  const fs::path out = scratch() / "run1";
  fs::remove_all(out);
  const CurationResult r = run_curation({in.shots, in.notes, in.reencode, in.truncated}, out.string(), config());
  const json& s = r.summary;

  // The damaged and the unreadable inputs are reported; the other two are processed.
  EXPECT_EQ(s["videos"]["inputs"], 4);
  EXPECT_EQ(s["videos"]["processed"], 2);
  EXPECT_EQ(s["videos"]["failed"], 2);
  std::string failures = s["videos"]["failures"].dump();
  EXPECT_NE(failures.find("truncated.mkv"), std::string::npos) << failures;
  EXPECT_NE(failures.find("\"error\":\"damaged: "), std::string::npos) << failures;
  EXPECT_NE(failures.find("notes.mp4"), std::string::npos) << failures;

  // Shots at exactly the cuts.
  const std::string shots_id = source_video_id(in.shots), dup_id = source_video_id(in.reencode);
  const json record = json::parse(read_small_file((out / "videos" / (shots_id + ".json")).string()));
  EXPECT_EQ(record["shots"], json::parse("[[0,80],[80,160],[160,240],[240,320]]"));
  EXPECT_EQ(record["status"], "done");

  // Clips: each 80-frame shot loses 12 frames (0.5 s) at both ends; 56 frames >= 48 remain.
  const std::vector<json> clips = read_jsonl(out / "clips.jsonl");
  EXPECT_EQ(clips.size(), 5u);
  EXPECT_EQ(clips, r.clips);
  for (const json& c : clips) {
    EXPECT_EQ(c["end_frame"].get<int64_t>() - c["start_frame"].get<int64_t>(), 56) << c.dump();
    EXPECT_EQ(c["frames"], 56) << c.dump();
    EXPECT_NEAR(c["duration"].get<double>(), 56.0 / kFps, 1e-6);
    EXPECT_NEAR(c["start_time"].get<double>(), c["start_frame"].get<double>() / kFps, 1e-9);
    EXPECT_EQ(c["width"], kW);
    EXPECT_EQ(c["height"], kH);
    EXPECT_TRUE(fs::exists(out / c["path"].get<std::string>())) << c["path"];
  }
  const json& moving = clip_at(clips, shots_id, 12);
  const json& still = clip_at(clips, shots_id, 92);
  const json& moving2 = clip_at(clips, shots_id, 172);
  const json& black = clip_at(clips, shots_id, 252);
  const json& dup = clip_at(clips, dup_id, 12);
  EXPECT_TRUE(moving["kept"].get<bool>()) << moving.dump();
  EXPECT_TRUE(moving2["kept"].get<bool>()) << moving2.dump();
  EXPECT_FALSE(still["kept"].get<bool>());
  EXPECT_TRUE(has_reason(still, "static")) << still["drop_reasons"];
  EXPECT_TRUE(has_reason(still, "low_motion")) << still["drop_reasons"];
  EXPECT_FALSE(black["kept"].get<bool>());
  EXPECT_TRUE(has_reason(black, "blank")) << black["drop_reasons"];
  // The re-encoded copy of the first shot is grouped with it; the original is kept.
  EXPECT_FALSE(dup["kept"].get<bool>());
  EXPECT_TRUE(has_reason(dup, "duplicate")) << dup["drop_reasons"];
  EXPECT_EQ(dup["duplicate_of"], moving["clip"]);
  EXPECT_EQ(dup["dedup_group"], moving["dedup_group"]);
  EXPECT_NE(moving2["dedup_group"], moving["dedup_group"]);
  // Every score is recorded.
  for (const char* key : {"global_mean", "per_patch_min_256", "frames_sampled", "method"})
    EXPECT_TRUE(moving["scores"]["motion"].contains(key)) << key;
  for (const char* key : {"mean_luma_std", "blank_fraction", "mean_frame_difference"})
    EXPECT_TRUE(moving["scores"]["static_blank"].contains(key)) << key;
  EXPECT_EQ(moving["fingerprint"].size(), 8u);

  // Summary counts and seconds.
  EXPECT_EQ(s["clips"]["total"], 5);
  EXPECT_EQ(s["clips"]["kept"], 2);
  EXPECT_EQ(s["clips"]["reasons"].value("duplicate", json::object()).value("clips", 0), 1) << s["clips"];
  EXPECT_EQ(s["clips"]["reasons"].value("blank", json::object()).value("clips", 0), 1) << s["clips"];
  EXPECT_EQ(s["clips"]["reasons"].value("static", json::object()).value("clips", 0), 1) << s["clips"];
  EXPECT_NEAR(s["seconds_out"].get<double>(), 2 * 56.0 / kFps, 1e-6);
  EXPECT_NEAR(s["seconds_in"].get<double>(), (kShots + 1) * kShotLen / double(kFps), 0.1);
  EXPECT_GT(s["throughput"]["video_seconds_per_wall_second"].get<double>(), 0.0);
  for (const char* stage : {"detect", "transcode", "motion", "finalize", "decide", "shard"})
    EXPECT_TRUE(s["throughput"]["stages"].contains(stage)) << stage;
  EXPECT_EQ(json::parse(read_small_file((out / "summary.json").string())), s);

  // Shards hold the two kept clips (an mp4 and a json each), in the 320x256 bucket (4:3 bin: 1.25),
  // as the system tar lists them.
  EXPECT_EQ(s["shards"]["samples"], 2);
  std::vector<std::string> members;
  for (const auto& e : fs::recursive_directory_iterator(out / "shards")) {
    if (!e.is_regular_file()) continue;
    const std::string p = e.path().string();
    EXPECT_NE(p.find("/resolution_lt_720/aspect_ratio_4_3/frames_0_255/"), std::string::npos) << p;
    for (const std::string& m : tar_members(p)) members.push_back(m);
  }
  std::sort(members.begin(), members.end());
  std::vector<std::string> want;
  for (const json* c : {&moving, &moving2})
    for (const char* ext : {".json", ".mp4"}) want.push_back((*c)["clip"].get<std::string>() + ext);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(members, want);
  for (const auto& e : fs::recursive_directory_iterator(out))
    EXPECT_EQ(e.path().string().find(".partial"), std::string::npos) << e.path();
}

TEST(CurationPipeline, ReRunResumesReappliesThresholdsAndRedoesUnfinishedVideos) {
  const Inputs& in = inputs();
  const fs::path out = scratch() / "run2";
  fs::remove_all(out);
  const CurationResult first = run_curation({in.shots, in.reencode}, out.string(), config());
  ASSERT_EQ(first.summary["videos"]["processed"], 2);

  // Nothing changed: both videos resume, the decisions are the same.
  const CurationResult again = run_curation({in.shots, in.reencode}, out.string(), config());
  EXPECT_EQ(again.summary["videos"]["resumed"], 2);
  EXPECT_EQ(again.summary["videos"]["processed"], 0);
  EXPECT_EQ(again.clips, first.clips);

  // Filter thresholds are re-applied to the recorded scores without decoding: with the static /
  // blank and motion filters off, the still and the black clips are kept.
  const CurationResult relaxed =
      run_curation({in.shots, in.reencode}, out.string(), config({"filter.static_blank=false", "filter.motion=false"}));
  EXPECT_EQ(relaxed.summary["videos"]["resumed"], 2);
  EXPECT_EQ(relaxed.summary["clips"]["kept"], 4);
  EXPECT_EQ(relaxed.summary["shards"]["samples"], 4);

  // An interrupted video (no finished record, a partial clip left behind) is processed again.
  const std::string shots_id = source_video_id(in.shots);
  fs::remove(out / "videos" / (shots_id + ".json"));
  write_file_atomic((out / "clips" / shots_id / "left_over.mp4.partial").string(), "half a clip");
  const CurationResult redo = run_curation({in.shots, in.reencode}, out.string(), config());
  EXPECT_EQ(redo.summary["videos"]["processed"], 1);
  EXPECT_EQ(redo.summary["videos"]["resumed"], 1);
  EXPECT_FALSE(fs::exists(out / "clips" / shots_id / "left_over.mp4.partial"));
  EXPECT_EQ(redo.clips, first.clips);  // the same bytes and scores: transcoding is reproducible

  // A setting that changes the clips (the split's crop) makes the videos be processed again.
  const CurationResult recut = run_curation({in.shots, in.reencode}, out.string(), config({"split.crop_s=0"}));
  EXPECT_EQ(recut.summary["videos"]["processed"], 2);
  EXPECT_EQ(recut.clips[0]["start_frame"], 0);
  EXPECT_EQ(recut.clips[0]["end_frame"], 80);
}

TEST(CurationPipeline, InputsAndErrors) {
  const Inputs& in = inputs();
  const std::vector<std::string> found = expand_video_inputs({scratch().string()});
  EXPECT_NE(std::find(found.begin(), found.end(), in.shots), found.end());
  EXPECT_NE(std::find(found.begin(), found.end(), in.reencode), found.end());
  EXPECT_TRUE(std::is_sorted(found.begin(), found.end()));
  EXPECT_ERROR_MENTIONS(expand_video_inputs({"/nonexistent/videos"}), "/nonexistent/videos");
  EXPECT_NE(source_video_id(in.shots), source_video_id(in.reencode));
  EXPECT_EQ(source_video_id("/a/b/my clip.v2.mp4").rfind("my_clip_v2_", 0), 0u);
  EXPECT_ERROR_MENTIONS(run_curation({in.shots}, "", config()), "output directory");
}

}  // namespace
}  // namespace foundry::video
