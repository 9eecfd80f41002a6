// Shot detection against real PySceneDetect 0.7.2 / OpenCV 5.0 (tests/fixtures/scenedetect.bin,
// written by tools/ref/write_scenedetect_fixture.py): OpenCV's 8-bit BGR2HSV exactly, every
// frame's content_val and deltas bit-exact, cut lists identical for every sequence and detector
// setting, AdaptiveDetector ratios bit-exact; plus FlashFilter min_scene_len cases by hand,
// scenes from cuts and timecodes as scenedetect prints them.
#include "foundry/video/content_detector.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <map>

#include "fixture.h"
#include "testing.h"

namespace foundry::video {
namespace {

using foundry::testing::Fixture;

const Fixture& fx() {
  static const Fixture f = Fixture::load(FOUNDRY_FIXTURES_DIR "/scenedetect.bin");
  return f;
}

const std::vector<std::string> kSequences = {"cuts", "flash", "fade", "noise"};

struct Sequence {
  int64_t t = 0, h = 0, w = 0;
  const uint8_t* bytes = nullptr;
  FrameRef frame(int64_t i) const {
    const size_t n = static_cast<size_t>(h * w * 3);
    return FrameRef{std::span<const uint8_t>(bytes + i * n, n), static_cast<int>(w), static_cast<int>(h), i};
  }
};

Sequence sequence(const std::string& name) {
  const Tensor& shape = fx().at("seq." + name + ".shape");
  const int64_t* s = shape.ptr<int64_t>();
  Sequence q{s[0], s[1], s[2], reinterpret_cast<const uint8_t*>(fx().at("seq." + name + ".frames").ptr<int32_t>())};
  EXPECT_EQ(fx().at("seq." + name + ".frames").nbytes(), q.t * q.h * q.w * 3);
  return q;
}

std::vector<int64_t> ints(const Tensor& t) {
  const int64_t* p = t.ptr<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

double f64(const Tensor& t, int64_t i) { return std::bit_cast<double>(t.ptr<int64_t>()[i]); }

template <class Detector> std::vector<int64_t> run(Detector det, const Sequence& q) {
  std::vector<int64_t> cuts;
  for (int64_t i = 0; i < q.t; ++i)
    if (auto c = det.process(q.frame(i))) cuts.push_back(*c);
  for (int64_t c : det.finish()) cuts.push_back(c);
  return cuts;
}

// Mode names and settings as MODES in tools/ref/write_scenedetect_fixture.py.
const std::map<std::string, std::function<std::vector<int64_t>(const Sequence&)>>& modes() {
  static const std::map<std::string, std::function<std::vector<int64_t>(const Sequence&)>> m = {
      {"content", [](const Sequence& q) { return run(ContentDetector(), q); }},
      {"content_luma", [](const Sequence& q) { return run(ContentDetector({.luma_only = true}), q); }},
      {"content_t12", [](const Sequence& q) { return run(ContentDetector({.threshold = 12.0}), q); }},
      {"content_t12_suppress",
       [](const Sequence& q) {
         return run(ContentDetector({.threshold = 12.0, .filter_mode = FlashMode::suppress}), q);
       }},
      {"content_t12_len5",
       [](const Sequence& q) { return run(ContentDetector({.threshold = 12.0, .min_scene_len = 5}), q); }},
      {"content_t12_len0",
       [](const Sequence& q) { return run(ContentDetector({.threshold = 12.0, .min_scene_len = 0}), q); }},
      {"content_edges",
       [](const Sequence& q) { return run(ContentDetector({.weights = {1.0, 1.0, 1.0, 1.0}}), q); }},
      {"content_edges_only_k3",
       [](const Sequence& q) {
         return run(ContentDetector({.threshold = 40.0, .weights = {0.0, 0.0, 0.0, 1.0}, .kernel_size = 3}), q);
       }},
      {"adaptive", [](const Sequence& q) { return run(AdaptiveDetector(), q); }},
      {"adaptive_luma", [](const Sequence& q) { return run(AdaptiveDetector({.luma_only = true}), q); }},
      {"adaptive_w1_len5",
       [](const Sequence& q) {
         return run(AdaptiveDetector({.min_scene_len = 5, .window_width = 1, .min_content_val = 8.0}), q);
       }},
  };
  return m;
}

TEST(BgrToHsvOpenCV, SampledColoursEqualCvtColor) {
  const Tensor& bgr = fx().at("hsv_bgr");
  const Tensor& hsv = fx().at("hsv_hsv");
  ASSERT_EQ(bgr.size(0), hsv.size(0));
  ASSERT_GT(bgr.size(0), 4000);
  const int32_t* in = bgr.ptr<int32_t>();
  const int32_t* ref = hsv.ptr<int32_t>();
  for (int64_t i = 0; i < bgr.size(0); ++i) {
    uint8_t h, s, v;
    bgr_to_hsv_opencv(in[3 * i], in[3 * i + 1], in[3 * i + 2], h, s, v);
    ASSERT_EQ(h, ref[3 * i]) << "bgr " << in[3 * i] << "," << in[3 * i + 1] << "," << in[3 * i + 2];
    ASSERT_EQ(s, ref[3 * i + 1]) << "bgr " << in[3 * i] << "," << in[3 * i + 1] << "," << in[3 * i + 2];
    ASSERT_EQ(v, ref[3 * i + 2]) << "bgr " << in[3 * i] << "," << in[3 * i + 1] << "," << in[3 * i + 2];
  }
}

TEST(BgrToHsvOpenCV, HueRangeOnAllColours) {
  // H in [0,180) for every colour (the Python writer checked all 2^24 against cv2 itself).
  for (int b = 0; b < 256; b += 3)
    for (int g = 0; g < 256; ++g)
      for (int r = 0; r < 256; ++r) {
        uint8_t h, s, v;
        bgr_to_hsv_opencv(b, g, r, h, s, v);
        ASSERT_LT(h, 180);
        ASSERT_EQ(v, std::max({b, g, r}));
      }
}

TEST(ContentDetector, ScoresBitExactWithScenedetect) {
  for (const auto& name : kSequences) {
    SCOPED_TRACE(name);
    const Sequence q = sequence(name);
    ContentDetector det({.compute_edges = true});  // as scenedetect with a StatsManager attached
    for (int64_t i = 0; i < q.t; ++i) det.process(q.frame(i));
    ASSERT_EQ(static_cast<int64_t>(det.scores().size()), q.t);
    const std::string p = "seq." + name + ".";
    for (int64_t i = 0; i < q.t; ++i) {
      const FrameScore& s = det.scores()[i];
      EXPECT_EQ(s.frame, i);
      if (i == 0) {  // scenedetect records nothing for the seeding frame
        EXPECT_FALSE(s.has_metrics);
        EXPECT_TRUE(std::isnan(f64(fx().at(p + "content_val"), 0)));
        EXPECT_EQ(s.content_val, 0.0);
        continue;
      }
      ASSERT_TRUE(s.has_metrics);
      EXPECT_EQ(std::bit_cast<int64_t>(s.content_val), std::bit_cast<int64_t>(f64(fx().at(p + "content_val"), i)))
          << "frame " << i << ": " << s.content_val << " vs " << f64(fx().at(p + "content_val"), i);
      EXPECT_EQ(s.delta_hue, f64(fx().at(p + "delta_hue"), i)) << "frame " << i;
      EXPECT_EQ(s.delta_sat, f64(fx().at(p + "delta_sat"), i)) << "frame " << i;
      EXPECT_EQ(s.delta_lum, f64(fx().at(p + "delta_lum"), i)) << "frame " << i;
      EXPECT_EQ(s.delta_edges, f64(fx().at(p + "delta_edges"), i)) << "frame " << i;
    }
  }
}

TEST(ContentDetector, EdgesOnlyWhenAskedFor) {
  const Sequence q = sequence("flash");
  ContentDetector det;  // edge weight 0, no compute_edges: delta_edges stays 0
  for (int64_t i = 0; i < 10; ++i) det.process(q.frame(i));
  for (int64_t i = 1; i < 10; ++i) EXPECT_EQ(det.scores()[i].delta_edges, 0.0);
  EXPECT_GT(f64(fx().at("seq.flash.delta_edges"), 1), 0.0);
}

TEST(ContentDetector, EstimatedKernelSize) {
  // scenedetect _estimated_kernel_size: 4 + round(sqrt(w*h)/192) (half to even), bumped to odd.
  EXPECT_EQ(estimated_kernel_size(40, 30), 5);
  EXPECT_EQ(estimated_kernel_size(256, 144), 5);   // 1.0 -> 5
  EXPECT_EQ(estimated_kernel_size(640, 480), 7);   // 2.89 -> 7
  EXPECT_EQ(estimated_kernel_size(1280, 720), 9);  // 5.0 -> 9
  EXPECT_EQ(estimated_kernel_size(1920, 1080), 13);  // 7.5 rounds to 8 -> 12 -> 13
}

TEST(ContentDetector, LumaOnlyScoreIsDeltaLum) {
  const Sequence q = sequence("fade");
  ContentDetector det({.luma_only = true});
  for (int64_t i = 0; i < q.t; ++i) det.process(q.frame(i));
  for (int64_t i = 1; i < q.t; ++i)
    EXPECT_EQ(det.scores()[i].content_val, f64(fx().at("seq.fade.delta_lum"), i)) << "frame " << i;
}

TEST(Detectors, CutListsIdenticalForEverySequenceAndMode) {
  int compared = 0, nonempty = 0;
  for (const auto& name : kSequences) {
    const Sequence q = sequence(name);
    for (const auto& [mode, detect] : modes()) {
      SCOPED_TRACE(name + " / " + mode);
      const std::vector<int64_t> want = ints(fx().at("seq." + name + ".cuts." + mode));
      EXPECT_EQ(detect(q), want);
      ++compared;
      nonempty += !want.empty();
    }
  }
  EXPECT_EQ(compared, 44);
  EXPECT_GE(nonempty, 34);  // the fixture exercises real cuts, not mostly empty lists
}

TEST(AdaptiveDetector, RatiosBitExactWithScenedetect) {
  for (const auto& name : kSequences) {
    SCOPED_TRACE(name);
    const Sequence q = sequence(name);
    AdaptiveDetector det;
    for (int64_t i = 0; i < q.t; ++i) det.process(q.frame(i));
    const Tensor& ref = fx().at("seq." + name + ".adaptive_ratio");
    // Frames 2 .. T-3 reach the centre of the 5-frame window; the rest have no ratio.
    ASSERT_EQ(static_cast<int64_t>(det.ratios().size()), q.t - 4);
    EXPECT_TRUE(std::isnan(f64(ref, 0)) && std::isnan(f64(ref, 1)) && std::isnan(f64(ref, q.t - 1)));
    for (const auto& [frame, ratio] : det.ratios())
      EXPECT_EQ(std::bit_cast<int64_t>(ratio), std::bit_cast<int64_t>(f64(ref, frame)))
          << "frame " << frame << ": " << ratio << " vs " << f64(ref, frame);
  }
}

// FlashFilter by hand: `above` frames in, cuts out.
std::vector<int64_t> flash(FlashMode mode, int64_t len, int64_t frames, std::vector<int64_t> above) {
  FlashFilter f(mode, len);
  std::vector<int64_t> cuts;
  for (int64_t i = 0; i < frames; ++i) {
    const bool a = std::find(above.begin(), above.end(), i) != above.end();
    if (auto c = f.filter(i, a)) cuts.push_back(*c);
  }
  return cuts;
}

TEST(FlashFilter, MinSceneLen) {
  // No cut within the first L frames (last_above starts at the first frame).
  EXPECT_EQ(flash(FlashMode::merge, 15, 40, {14}), (std::vector<int64_t>{}));
  EXPECT_EQ(flash(FlashMode::merge, 15, 40, {15}), (std::vector<int64_t>{15}));
  // SUPPRESS measures from the last emitted cut only: 5 is not emitted and does not move it.
  EXPECT_EQ(flash(FlashMode::suppress, 15, 40, {5, 15}), (std::vector<int64_t>{15}));
  EXPECT_EQ(flash(FlashMode::suppress, 15, 40, {16}), (std::vector<int64_t>{16}));
  EXPECT_EQ(flash(FlashMode::suppress, 15, 60, {20, 30, 35, 36}), (std::vector<int64_t>{20, 35}));
  // MERGE: 20 cuts; 27 is too close, starts a merge; 50 is above again, and once the frames are
  // below for L frames and the merge spans >= L, the last above frame (50) is emitted at 65.
  EXPECT_EQ(flash(FlashMode::merge, 15, 80, {20, 27, 50}), (std::vector<int64_t>{20, 50}));
  // A merge that never spans L frames is dropped (a flash right after a cut).
  EXPECT_EQ(flash(FlashMode::merge, 15, 80, {20, 27}), (std::vector<int64_t>{20}));
  // Before the first cut, merging is disabled: a too-early frame is just ignored.
  EXPECT_EQ(flash(FlashMode::merge, 15, 80, {3, 30}), (std::vector<int64_t>{30}));
  // Length <= 0 disables the filter.
  EXPECT_EQ(flash(FlashMode::merge, 0, 10, {0, 1, 2}), (std::vector<int64_t>{0, 1, 2}));
}

TEST(Scenes, FromCutsAndTimecodes) {
  const std::vector<int64_t> cuts = ints(fx().at("seq.cuts.cuts.content"));  // {20, 45, 80}
  const std::vector<Scene> s = scenes_from_cuts(cuts, 0, 100);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].start, 0);
  EXPECT_EQ(s[0].end, 20);
  EXPECT_EQ(s[1].start, 20);
  EXPECT_EQ(s[2].end, 80);
  EXPECT_EQ(s[3].start, 80);
  EXPECT_EQ(s[3].end, 100);
  const std::vector<Scene> one = scenes_from_cuts({}, 0, 37);  // start_in_scene=True: whole video
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].end, 37);
  EXPECT_ERROR_MENTIONS(scenes_from_cuts(std::vector<int64_t>{5, 5}, 0, 10), "cut 5");
  // Expected strings from scenedetect 0.7.2 FrameTimecode(frame, fps).get_timecode().
  const double ntsc = 30000.0 / 1001.0, ntsc60 = 60000.0 / 1001.0;
  EXPECT_EQ(frame_timecode(0, 25.0), "00:00:00.000");
  EXPECT_EQ(frame_timecode(20, 25.0), "00:00:00.800");
  EXPECT_EQ(frame_timecode(37, 25.0), "00:00:01.480");
  EXPECT_EQ(frame_timecode(1799, 30.0), "00:00:59.967");
  EXPECT_EQ(frame_timecode(90000, 25.0), "01:00:00.000");
  EXPECT_EQ(frame_timecode(107892, ntsc), "00:59:59.996");
  EXPECT_EQ(frame_timecode(1, ntsc), "00:00:00.033");
  EXPECT_EQ(frame_timecode(2, ntsc), "00:00:00.067");
  EXPECT_EQ(frame_timecode(1798, ntsc), "00:00:59.993");
  EXPECT_EQ(frame_timecode(89999, 25.0), "00:59:59.960");
  EXPECT_EQ(frame_timecode(5, 24.0), "00:00:00.208");
  EXPECT_EQ(frame_timecode(359999, 100.0), "00:59:59.990");
  EXPECT_EQ(frame_timecode(215999, ntsc60), "01:00:03.583");
}

TEST(ContentDetector, RejectsBadFramesAndOptions) {
  std::vector<uint8_t> a(4 * 3 * 3), b(5 * 3 * 3);
  ContentDetector det;
  EXPECT_ERROR_MENTIONS(det.process(FrameRef{a, 4, 4, 0}), "frame 0", "48");
  det.process(FrameRef{a, 4, 3, 0});
  EXPECT_ERROR_MENTIONS(det.process(FrameRef{b, 5, 3, 1}), "frame 1", "5x3", "4x3");
  EXPECT_ERROR_MENTIONS(ContentDetector({.kernel_size = 4}), "kernel_size 4");
  EXPECT_ERROR_MENTIONS(ContentDetector({.weights = {0, 0, 0, 0}}), "weights are 0");
  EXPECT_ERROR_MENTIONS(AdaptiveDetector({.window_width = 0}), "window_width 0");
}

}  // namespace
}  // namespace foundry::video
