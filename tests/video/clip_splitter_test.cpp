// Clip splitting (video/clip_splitter.h) against spans worked out by hand from the cosmos-curate
// rules: stride at 60 s (last span dropped below the minimum), crop 0.5 s from each end, drop what
// is shorter than max(ceil(2 s * fps), 48 frames).
#include "foundry/video/clip_splitter.h"

#include "testing.h"

namespace foundry::video {
namespace {

std::vector<std::array<int64_t, 2>> ranges(const SplitResult& r) {
  std::vector<std::array<int64_t, 2>> out;
  for (const auto& c : r.clips) out.push_back({c.start_frame, c.end_frame});
  return out;
}

TEST(ClipSplitter, LengthsInFramesFollowTheFrameRate) {
  const SplitResult at24 = split_clips({}, 24.0);
  EXPECT_EQ(at24.min_length, 48);    // max(ceil(2 * 24), 48)
  EXPECT_EQ(at24.max_length, 1440);  // int(60 * 24)
  EXPECT_EQ(at24.crop_length, 12);   // int(0.5 * 24)
  const SplitResult at30 = split_clips({}, 30.0);
  EXPECT_EQ(at30.min_length, 60);
  EXPECT_EQ(at30.crop_length, 15);
  const SplitResult at10 = split_clips({}, 10.0);
  EXPECT_EQ(at10.min_length, 48);  // the 48-frame floor wins at low frame rates
  const SplitResult ntsc = split_clips({}, 30000.0 / 1001);
  EXPECT_EQ(ntsc.min_length, 60);    // ceil(59.94)
  EXPECT_EQ(ntsc.max_length, 1798);  // int(1798.2)
  EXPECT_EQ(ntsc.crop_length, 14);   // int(14.985)
}

TEST(ClipSplitter, CropsStridesAndDropsShortSpans) {
  // 24 fps: min 48, max 1440, crop 12.
  const std::vector<Scene> shots = {{0, 100}, {100, 150}, {150, 3150}, {3150, 4630}};
  const SplitResult r = split_clips(shots, 24.0);
  const std::vector<std::array<int64_t, 2>> want = {
      {12, 88},                                  // shot 0 cropped
      {162, 1578}, {1602, 3018}, {3042, 3138},   // shot 2: stride spans [150,1590) [1590,3030) [3030,3150), cropped
      {3162, 4578}};                             // shot 3: [3150,4590); its last span [4590,4630) is 40 < 48
  EXPECT_EQ(ranges(r), want);
  EXPECT_EQ(r.clips[1].shot, 2);
  EXPECT_EQ(r.clips[4].shot, 3);
  ASSERT_EQ(r.dropped.size(), 2u);
  EXPECT_EQ(r.dropped[0].shot, 3);  // dropped while striding, before the crop pass
  EXPECT_EQ(r.dropped[0].start_frame, 4590);
  EXPECT_EQ(r.dropped[0].end_frame, 4630);
  EXPECT_NE(r.dropped[0].reason.find("last stride span"), std::string::npos);
  EXPECT_EQ(r.dropped[1].shot, 1);  // [112, 138) is 26 frames
  EXPECT_NE(r.dropped[1].reason.find("26 < 48"), std::string::npos);
}

TEST(ClipSplitter, EveryFrameOfAShotIsAccountedFor) {
  // Clips plus crops plus dropped spans tile each shot exactly once.
  const std::vector<Scene> shots = {{0, 47}, {47, 2000}, {2000, 2010}, {2010, 5000}};
  const SplitResult r = split_clips(shots, 25.0);
  std::vector<int> covered(5000, 0);
  for (const auto& c : r.clips)
    for (int64_t f = c.start_frame - r.crop_length; f < c.end_frame + r.crop_length; ++f) ++covered[f];
  for (const auto& d : r.dropped)
    for (int64_t f = d.start_frame; f < d.end_frame; ++f) ++covered[f];
  for (int f = 0; f < 5000; ++f) ASSERT_EQ(covered[f], 1) << "frame " << f;
  for (const auto& c : r.clips) {
    EXPECT_GE(c.end_frame - c.start_frame, r.min_length);
    EXPECT_LE(c.end_frame - c.start_frame, r.max_length - 2 * r.crop_length);
  }
}

TEST(ClipSplitter, TruncateModeAndNoMaximum) {
  const std::vector<Scene> shots = {{0, 4000}};
  SplitOptions o;
  o.max_length_mode = "truncate";
  const SplitResult t = split_clips(shots, 24.0, o);
  EXPECT_EQ(ranges(t), (std::vector<std::array<int64_t, 2>>{{12, 1428}}));
  ASSERT_EQ(t.dropped.size(), 1u);
  EXPECT_EQ(t.dropped[0].start_frame, 1440);
  o.max_length_s = 0;
  EXPECT_EQ(ranges(split_clips(shots, 24.0, o)), (std::vector<std::array<int64_t, 2>>{{12, 3988}}));
  o.crop_s = 0;
  o.min_length_s = 0;
  o.min_length_frames = 0;
  EXPECT_EQ(ranges(split_clips({{5, 6}}, 24.0, o)), (std::vector<std::array<int64_t, 2>>{{5, 6}}));
}

TEST(ClipSplitter, BadOptionsAreNamed) {
  EXPECT_ERROR_MENTIONS(split_clips({}, 0.0), "fps");
  SplitOptions o;
  o.max_length_mode = "wrap";
  EXPECT_ERROR_MENTIONS(split_clips({}, 24.0, o), "split.max_length_mode 'wrap'");
  o = {};
  o.crop_s = -1;
  EXPECT_ERROR_MENTIONS(split_clips({}, 24.0, o), "split.crop_s");
  EXPECT_ERROR_MENTIONS(split_clips({{10, 20}, {15, 30}}, 24.0), "overlaps");
}

}  // namespace
}  // namespace foundry::video
