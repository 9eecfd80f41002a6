// Shot detection on encoded files (video/shot_detection.h): a synthetic H.264 video written with
// libavcodec (colour fields with a moving square, hard cuts at known frames) is decoded and its
// cuts found at exactly those frames by both detectors; the scores on the decoded frames equal a
// naive transcription of the reference formulas (OpenCV integer HSV, mean absolute channel
// deltas); the JSON lists the scenes as `scenedetect list-scenes`; a truncated file is reported
// and its decodable part analysed; bad paths are clear errors.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "foundry/video/shot_detection.h"
#include "foundry/video/video_writer.h"
#include "testing.h"

namespace foundry::video {
namespace {

namespace fs = std::filesystem;

constexpr int kW = 160, kH = 120, kFrames = 80;
const std::vector<int64_t> kCuts = {30, 55};

std::string scratch(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("foundry_shots_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

// Frame t: a flat field whose colour changes at the cuts, with a white square moving 2 px a frame.
std::vector<uint8_t> synthetic_frame(int t) {
  const uint8_t fields[3][3] = {{200, 60, 30}, {40, 50, 190}, {60, 170, 70}};  // BGR
  const int scene = t < kCuts[0] ? 0 : t < kCuts[1] ? 1 : 2;
  std::vector<uint8_t> f(static_cast<size_t>(kW * kH * 3));
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      const bool square = x >= 10 + 2 * (t % 40) && x < 30 + 2 * (t % 40) && y >= 40 && y < 60;
      for (int c = 0; c < 3; ++c) f[static_cast<size_t>((y * kW + x) * 3 + c)] = square ? 250 : fields[scene][c];
    }
  return f;
}

std::string write_video(const std::string& name) {
  const std::string p = scratch(name);
  VideoWriter w(p, {.width = kW, .height = kH, .fps = {25, 1}, .crf = 10});
  for (int t = 0; t < kFrames; ++t) w.write(synthetic_frame(t).data());
  w.close();
  return p;
}

const std::string& synthetic_video() {
  static const std::string path = write_video("cuts.mp4");
  return path;
}

// The reference formulas, written out naively: OpenCV's 8-bit HSV, then the mean absolute
// difference of each channel between consecutive frames, averaged over the three channels.
void naive_hsv(uint8_t b, uint8_t g, uint8_t r, int& h, int& s, int& v) {
  v = std::max({b, g, r});
  const int diff = v - std::min({b, g, r});
  const auto round_half_even = [](double x) { return static_cast<int>(std::nearbyint(x)); };
  const int sdiv = v == 0 ? 0 : round_half_even((255 << 12) / static_cast<double>(v));
  const int hdiv = diff == 0 ? 0 : round_half_even((180 << 12) / (6.0 * diff));
  s = (diff * sdiv + (1 << 11)) >> 12;
  int hh = v == r ? g - b : v == g ? b - r + 2 * diff : r - g + 4 * diff;
  hh = (hh * hdiv + (1 << 11)) >> 12;
  h = hh < 0 ? hh + 180 : hh;
}

TEST(ShotDetection, CutsAtTheKnownFramesWithBothDetectors) {
  ShotDetectionOptions o;
  o.downscale = 1;
  const ShotList content = detect_shots(synthetic_video(), o);
  EXPECT_EQ(content.frames, kFrames);
  EXPECT_EQ(content.cuts, kCuts);
  ASSERT_EQ(content.scenes.size(), 3u);
  EXPECT_EQ(content.scenes[1].start, 30);
  EXPECT_EQ(content.scenes[2].end, kFrames);
  EXPECT_EQ(content.decode_errors, 0);
  o.detector = "adaptive";
  EXPECT_EQ(detect_shots(synthetic_video(), o).cuts, kCuts);
  // Auto downscale leaves a 160 px video alone; a factor 2 still finds the cuts.
  o.detector = "content";
  o.downscale = 2;
  const ShotList half = detect_shots(synthetic_video(), o);
  EXPECT_EQ(half.analysis_width, kW / 2);
  EXPECT_EQ(half.cuts, kCuts);
  EXPECT_EQ(analysis_size(1920, 1080, 0), (std::pair<int, int>{256, 144}));
  EXPECT_EQ(analysis_size(kW, kH, 0), (std::pair<int, int>{kW, kH}));
}

TEST(ShotDetection, ScoresOnDecodedFramesFollowTheReferenceFormulas) {
  ShotDetectionOptions o;
  o.downscale = 1;
  const ShotList shots = detect_shots(synthetic_video(), o);
  VideoReader reader(synthetic_video(), {.sws_flags = 4 /* SWS_BICUBIC, as detect_shots at the source size */});
  Frame f;
  std::vector<int> prev;
  for (int64_t t = 0; reader.next(f); ++t) {
    std::vector<int> hsv(static_cast<size_t>(kW * kH * 3));
    for (int i = 0; i < kW * kH; ++i)
      naive_hsv(f.data[3 * i], f.data[3 * i + 1], f.data[3 * i + 2], hsv[3 * i], hsv[3 * i + 1], hsv[3 * i + 2]);
    const FrameScore& s = shots.scores.at(static_cast<size_t>(t));
    if (!prev.empty()) {
      double delta[3] = {0, 0, 0};
      for (size_t i = 0; i < hsv.size(); ++i) delta[i % 3] += std::abs(hsv[i] - prev[i]);
      for (double& d : delta) d /= kW * kH;
      EXPECT_EQ(s.delta_hue, delta[0]) << t;
      EXPECT_EQ(s.delta_sat, delta[1]) << t;
      EXPECT_EQ(s.delta_lum, delta[2]) << t;
      EXPECT_DOUBLE_EQ(s.content_val, (delta[0] + delta[1] + delta[2]) / 3) << t;
      const bool cut = t == kCuts[0] || t == kCuts[1];
      EXPECT_EQ(s.content_val >= 27.0, cut) << "frame " << t << " scores " << s.content_val;
    }
    prev = std::move(hsv);
  }
}

TEST(ShotDetection, JsonListsTheScenesLikeScenedetect) {
  ShotDetectionOptions o;
  const nlohmann::json j = shots_json(detect_shots(synthetic_video(), o), o);
  EXPECT_EQ(j["frames"], kFrames);
  EXPECT_EQ(j["fps"], 25.0);
  EXPECT_EQ(j["cuts"], nlohmann::json(kCuts));
  ASSERT_EQ(j["scenes"].size(), 3u);
  const nlohmann::json& second = j["scenes"][1];
  EXPECT_EQ(second["index"], 2);
  EXPECT_EQ(second["start_frame"], 30);
  EXPECT_EQ(second["end_frame"], 55);
  EXPECT_EQ(second["start_timecode"], "00:00:01.200");
  EXPECT_EQ(second["end_timecode"], "00:00:02.200");
  EXPECT_EQ(second["length_frames"], 25);
  EXPECT_DOUBLE_EQ(second["length_seconds"].get<double>(), 1.0);
  EXPECT_EQ(j["detector"]["threshold"], 27.0);
  EXPECT_FALSE(j.contains("error"));
}

TEST(ShotDetection, TruncatedFileIsReportedAndItsDecodablePartAnalysed) {
  // Matroska is streamable: a cut file opens and decodes up to the damage.
  const std::string whole = write_video("cuts.mkv"), cut = scratch("truncated.mkv");
  {
    std::ifstream in(whole, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() * 2 / 3);
  }
  ShotDetectionOptions o;
  const ShotList s = detect_shots(cut, o);
  EXPECT_GT(s.decode_errors, 0);
  EXPECT_GT(s.frames, 10);
  EXPECT_LT(s.frames, kFrames);
  const nlohmann::json j = shots_json(s, o);
  EXPECT_TRUE(j.contains("error"));
}

TEST(ShotDetection, BadInputIsAClearError) {
  const std::string missing = scratch("missing.mp4");
  const std::string e = testing::error_of([&] { detect_shots(missing); });
  EXPECT_NE(e.find(missing), std::string::npos) << e;
  ShotDetectionOptions o;
  o.detector = "histogram";
  EXPECT_NE(testing::error_of([&] { detect_shots(synthetic_video(), o); }).find("histogram"), std::string::npos);
}

}  // namespace
}  // namespace foundry::video
