// FFmpeg scene scores through libavfilter (video/ffmpeg_scene_detector.h): a synthetic H.264 video
// (flat fields of very different luma with hard cuts at known frames, a white square moving 2 px a
// frame) is decoded; every frame's scdet mafd / score and select scene_score equal a naive
// transcription of FFmpeg 5.1's formulas (vf_scdet.c, f_select.c) on the decoded yuv420p luma
// plane, printed as the filters print them; the cuts are the known frames; min_scene_len drops
// cuts; detect_shots with scdet lists the same scenes; bad input is a clear error. Also the
// reader's convert=false mode: no pixels, decoded() at the source size, seeks still frame-accurate.
#include <unistd.h>

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
}

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "foundry/video/ffmpeg_scene_detector.h"
#include "foundry/video/shot_detection.h"
#include "foundry/video/video_writer.h"
#include "testing.h"

namespace foundry::video {
namespace {

namespace fs = std::filesystem;

constexpr int kW = 160, kH = 120, kFrames = 70;
const std::vector<int64_t> kCuts = {24, 45};

std::string scratch(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("foundry_ffscene_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

// Frame t: a flat field (luma about 30, 196, 116) that changes at the cuts, with a white 20x20
// square moving 2 px a frame.
std::vector<uint8_t> synthetic_frame(int t) {
  const uint8_t fields[3][3] = {{30, 30, 30}, {220, 200, 180}, {60, 140, 90}};  // BGR
  const int scene = t < kCuts[0] ? 0 : t < kCuts[1] ? 1 : 2;
  std::vector<uint8_t> f(static_cast<size_t>(kW * kH * 3));
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      const bool square = x >= 10 + 2 * t && x < 30 + 2 * t && y >= 40 && y < 60;
      for (int c = 0; c < 3; ++c) f[static_cast<size_t>((y * kW + x) * 3 + c)] = square ? 250 : fields[scene][c];
    }
  return f;
}

const std::string& synthetic_video() {
  static const std::string path = [] {
    const std::string p = scratch("cuts.mp4");
    VideoWriter w(p, {.width = kW, .height = kH, .fps = {25, 1}, .crf = 10, .gop = 12});
    for (int t = 0; t < kFrames; ++t) w.write(synthetic_frame(t).data());
    w.close();
    return p;
  }();
  return path;
}

// The decoded luma planes, (kFrames, kH, kW) u8, read through VideoReader::decoded().
const std::vector<std::vector<uint8_t>>& decoded_luma() {
  static const std::vector<std::vector<uint8_t>> planes = [] {
    std::vector<std::vector<uint8_t>> out;
    VideoReader reader(synthetic_video(), {.convert = false});
    Frame f;
    while (reader.next(f)) {
      const AVFrame* d = reader.decoded();
      EXPECT_EQ(d->format, AV_PIX_FMT_YUV420P);
      std::vector<uint8_t> y(static_cast<size_t>(kW * kH));
      for (int r = 0; r < kH; ++r)
        for (int x = 0; x < kW; ++x) y[static_cast<size_t>(r * kW + x)] = d->data[0][r * d->linesize[0] + x];
      out.push_back(std::move(y));
    }
    return out;
  }();
  return planes;
}

// A value as the filter prints it ("%0.3f" for scdet, "%f" for select), read back.
double printed(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return std::strtod(buf, nullptr);
}

// Naive FFmpeg 5.1 scene scores over 8-bit luma planes: SAD of consecutive frames, count = w*h,
// prev_mafd from 0, the first frame 0. scdet: mafd = SAD*100/count/2^8, score = clip(min(mafd,
// |mafd - prev|), 0, 100). select: mafd = SAD/count/2^0, scene = clip(min(mafd, |mafd - prev|)/100, 0, 1).
struct Naive {
  std::vector<double> mafd, score;  // unrounded
};
Naive naive_scores(bool scdet) {
  const auto& y = decoded_luma();
  Naive n;
  double prev_mafd = 0;
  for (size_t t = 0; t < y.size(); ++t) {
    if (t == 0) {
      n.mafd.push_back(0);
      n.score.push_back(0);
      continue;
    }
    uint64_t sad = 0;
    for (size_t i = 0; i < y[t].size(); ++i) sad += static_cast<uint64_t>(std::abs(int(y[t][i]) - int(y[t - 1][i])));
    const double count = double(kW) * kH;
    const double mafd = scdet ? double(sad) * 100.0 / count / 256.0 : double(sad) / count / 1.0;
    const double diff = std::fabs(mafd - prev_mafd);
    const double score = scdet ? std::clamp(std::min(mafd, diff), 0.0, 100.0)
                               : std::clamp(std::min(mafd, diff) / 100.0, 0.0, 1.0);
    prev_mafd = mafd;
    n.mafd.push_back(mafd);
    n.score.push_back(score);
  }
  return n;
}

TEST(FfmpegScene, ScdetMafdAndScoreFollowTheFormulaOnTheDecodedLuma) {
  const FfmpegSceneScores s = ffmpeg_scene_scores(synthetic_video());
  const Naive n = naive_scores(true);
  ASSERT_EQ(s.frames, kFrames);
  ASSERT_EQ(n.score.size(), size_t(kFrames));
  ASSERT_EQ(s.score.size(), size_t(kFrames));
  ASSERT_EQ(s.mafd.size(), size_t(kFrames));
  EXPECT_EQ(s.threshold, 10.0);
  for (int t = 0; t < kFrames; ++t) {
    EXPECT_EQ(s.mafd[t], printed("%0.3f", n.mafd[t])) << "frame " << t;
    EXPECT_EQ(s.score[t], printed("%0.3f", n.score[t])) << "frame " << t;
  }
  // The filter's cuts are the frames whose unrounded score reaches the threshold.
  std::vector<int64_t> expected;
  for (int t = 1; t < kFrames; ++t)
    if (n.score[t] >= 10.0) expected.push_back(t);
  EXPECT_EQ(s.cuts, expected);
  EXPECT_EQ(s.cuts, kCuts);
  EXPECT_EQ(s.decode_errors, 0);
  EXPECT_GT(s.score[kCuts[0]], 40.0);  // a luma step of about 140 of 256 levels
}

TEST(FfmpegScene, SelectSceneScoreFollowsTheFormulaOnTheDecodedLuma) {
  const FfmpegSceneScores s = ffmpeg_scene_scores(synthetic_video(), {.filter = "select"});
  const Naive n = naive_scores(false);
  ASSERT_EQ(s.score.size(), size_t(kFrames));
  EXPECT_TRUE(s.mafd.empty());
  EXPECT_EQ(s.threshold, 0.4);
  for (int t = 0; t < kFrames; ++t) EXPECT_EQ(s.score[t], printed("%f", n.score[t])) << "frame " << t;
  EXPECT_EQ(s.cuts, kCuts);
  // Frame 1 differs from frame 0 by the moving square only (a small, non-zero score); later frames
  // of a scene change as much as the one before (|mafd - prev_mafd| about 0); the first cut's
  // min(mafd, diff) / 100 is clipped to 1.
  EXPECT_GT(s.score[1], 0.0);
  EXPECT_LT(s.score[1], 0.05);
  EXPECT_LT(s.score[10], 0.05);
  EXPECT_EQ(s.score[kCuts[0]], 1.0);
}

TEST(FfmpegScene, MinSceneLenDropsCutsNearThePreviousCutOrTheStart) {
  // Cuts 24 and 45: 45 - 24 = 21 frames apart.
  EXPECT_EQ(ffmpeg_scene_scores(synthetic_video(), {.min_scene_len = 21}).cuts, kCuts);
  EXPECT_EQ(ffmpeg_scene_scores(synthetic_video(), {.min_scene_len = 22}).cuts, (std::vector<int64_t>{24}));
  // 24 is too close to frame 0; 45 is then measured from frame 0.
  EXPECT_EQ(ffmpeg_scene_scores(synthetic_video(), {.filter = "select", .min_scene_len = 25}).cuts,
            (std::vector<int64_t>{45}));
  // A threshold above every score: no cuts.
  EXPECT_TRUE(ffmpeg_scene_scores(synthetic_video(), {.threshold = 100}).cuts.empty());
}

TEST(FfmpegScene, DetectShotsWithScdetListsTheKnownScenes) {
  ShotDetectionOptions o;
  o.detector = "scdet";
  const ShotList shots = detect_shots(synthetic_video(), o);
  EXPECT_EQ(shots.cuts, kCuts);
  ASSERT_EQ(shots.scenes.size(), 3u);
  EXPECT_EQ(shots.scenes[0].start, 0);
  EXPECT_EQ(shots.scenes[0].end, 24);
  EXPECT_EQ(shots.scenes[1].end, 45);
  EXPECT_EQ(shots.scenes[2].end, kFrames);
  EXPECT_EQ(shots.filter_scores, ffmpeg_scene_scores(synthetic_video()).score);
  const nlohmann::json j = shots_json(shots, o);
  EXPECT_EQ(j["detector"]["name"], "scdet");
  EXPECT_EQ(j["detector"]["threshold"], 10.0);
  EXPECT_EQ(j["scores"].size(), size_t(kFrames));
  EXPECT_EQ(j["analysis_width"], kW);
  // select, at its own default threshold, finds the same scenes.
  o.detector = "select";
  const ShotList selected = detect_shots(synthetic_video(), o);
  EXPECT_EQ(selected.cuts, kCuts);
  EXPECT_EQ(shots_json(selected, o)["detector"]["threshold"], 0.4);
}

TEST(FfmpegScene, BadFilterThresholdOrFileIsAClearError) {
  EXPECT_ERROR_MENTIONS(ffmpeg_scene_scores(synthetic_video(), {.filter = "histogram"}), "histogram",
                        synthetic_video().c_str());
  EXPECT_ERROR_MENTIONS(ffmpeg_scene_scores(synthetic_video(), {.filter = "select", .threshold = 2}), "select", "2");
  const std::string missing = scratch("missing.mp4");
  EXPECT_ERROR_MENTIONS(ffmpeg_scene_scores(missing), missing.c_str());
  ShotDetectionOptions o;
  o.detector = "scdet";
  EXPECT_ERROR_MENTIONS(detect_shots(missing, o), missing.c_str());
}

TEST(FfmpegScene, ReaderWithoutConversionSeeksFrameAccuratelyAndExposesTheDecodedFrame) {
  VideoReader reader(synthetic_video(), {.convert = false});
  EXPECT_EQ(reader.decoded(), nullptr);
  Frame f;
  // Frame 37 lies 1 frame after a keyframe boundary of 12 frames (36): the seek decodes forward.
  for (const int64_t target : {37, 5, 69}) {
    ASSERT_TRUE(reader.seek(target / 25.0));
    ASSERT_TRUE(reader.next(f));
    EXPECT_EQ(f.index, target);
    EXPECT_TRUE(f.data.empty());
    EXPECT_EQ(f.width, kW);
    EXPECT_EQ(f.height, kH);
    EXPECT_EQ(f.channels, 0);
    const AVFrame* d = reader.decoded();
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->width, kW);
    EXPECT_EQ(d->height, kH);
    // The same picture as the sequential decode of that frame.
    const std::vector<uint8_t>& expected = decoded_luma().at(static_cast<size_t>(target));
    int mismatches = 0;
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x) mismatches += d->data[0][y * d->linesize[0] + x] != expected[size_t(y * kW + x)];
    EXPECT_EQ(mismatches, 0) << "frame " << target;
  }
  EXPECT_FALSE(reader.next(f));  // 69 was the last frame
  EXPECT_EQ(reader.decoded(), nullptr);
  // With conversion (the default) the frame still has its BGR pixels and decoded() its source.
  VideoReader bgr(synthetic_video());
  ASSERT_TRUE(bgr.next(f));
  EXPECT_EQ(f.channels, 3);
  EXPECT_EQ(f.data.size(), size_t(kW * kH * 3));
  ASSERT_NE(bgr.decoded(), nullptr);
  EXPECT_EQ(bgr.decoded()->width, kW);
}

}  // namespace
}  // namespace foundry::video
