// VideoWriter -> VideoReader round trips on a small synthetic video (160x120, 25 fps, 60 frames):
//   rows 0..103:   a solid colour field that changes at frames 20 and 40, with a 16x16 white square
//                  moving 2 px per frame (x = 2i, y = 40);
//   rows 104..119: a grey strip of level 4i, so every decoded frame tells its own number.
// The codecs are lossy, so colours are compared as region means with a small tolerance.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

extern "C" {
#include <libavutil/log.h>
}

#include "foundry/video/video_reader.h"
#include "foundry/video/video_writer.h"
#include "testing.h"

namespace foundry::video {
namespace {

namespace fs = std::filesystem;

constexpr int kW = 160, kH = 120, kFrames = 60, kStrip = 104;
struct Bgr {
  int b, g, r;
};
constexpr Bgr kFields[3] = {{200, 40, 30}, {30, 180, 60}, {90, 60, 220}};  // frames 0-19, 20-39, 40-59

const bool kQuiet = [] {
  set_libav_log_level(AV_LOG_QUIET);  // damaged-file tests make the decoders complain on stderr
  return true;
}();

std::vector<uint8_t> synthetic_frame(int i) {
  std::vector<uint8_t> img(size_t(kW) * kH * 3);
  const Bgr c = kFields[i / 20];
  for (int y = 0; y < kH; ++y) {
    for (int x = 0; x < kW; ++x) {
      uint8_t* p = &img[(size_t(y) * kW + x) * 3];
      const bool square = x >= 2 * i && x < 2 * i + 16 && y >= 40 && y < 56;
      if (y >= kStrip) {
        p[0] = p[1] = p[2] = uint8_t(4 * i);
      } else if (square) {
        p[0] = p[1] = p[2] = 255;
      } else {
        p[0] = uint8_t(c.b), p[1] = uint8_t(c.g), p[2] = uint8_t(c.r);
      }
    }
  }
  return img;
}

// Mean of channel ch over rows [y0, y1) and columns [x0, x1) of a packed frame.
double region_mean(const Frame& f, int ch, int y0, int y1, int x0, int x1) {
  double s = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) s += f.pixel(y, x)[ch];
  return s / (double(y1 - y0) * (x1 - x0));
}

// The frame number a decoded frame carries in its grey strip.
int strip_number(const Frame& f) {
  return int(std::lround(region_mean(f, 0, kStrip + 2, kH - 2, 2, kW - 2) / 4.0));
}

std::string scratch() {
  const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) /
                 fmt::format("foundry_video_{}_{}_{}", t->test_suite_name(), t->name(), ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// Each test writes into its own directory, removed when the test passes.
class VideoIo : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = scratch(); }
  void TearDown() override {
    std::error_code ec;
    if (!HasFailure()) fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

std::string write_synthetic(const std::string& path, WriterOptions o = {}, std::string* codec = nullptr) {
  o.width = kW;
  o.height = kH;
  o.fps = {25, 1};
  if (o.crf < 0 && o.qscale < 0) o.crf = 18;
  if (o.preset.empty()) o.preset = "veryfast";  // B-frames on: the reader must reorder
  if (o.gop == 0) o.gop = 10;
  if (o.threads == 0) o.threads = 1;  // the same bytes on every machine (the truncation tests cut at fixed fractions)
  VideoWriter w(path, o);
  for (int i = 0; i < kFrames; ++i) w.write(synthetic_frame(i).data());
  w.close();
  EXPECT_EQ(w.frames_written(), kFrames);
  if (codec) *codec = w.codec();
  return path;
}

// Reads every frame and checks numbering, timing and colours against what was written.
void check_round_trip(const std::string& path, double tol) {
  VideoReader r(path);
  const VideoInfo& info = r.info();
  EXPECT_EQ(info.width, kW);
  EXPECT_EQ(info.height, kH);
  EXPECT_EQ(info.fps.num, 25);
  EXPECT_EQ(info.fps.den, 1);
  EXPECT_DOUBLE_EQ(info.fps_value, 25.0);
  EXPECT_NEAR(info.duration, kFrames / 25.0, 0.041) << path;
  EXPECT_EQ(info.frame_count, kFrames) << path;
  EXPECT_EQ(info.pixel_format, "yuv420p");
  Frame f;
  int n = 0;
  double prev = -1;
  while (r.next(f)) {
    ASSERT_EQ(f.width, kW);
    ASSERT_EQ(f.height, kH);
    ASSERT_EQ(f.channels, 3);
    EXPECT_EQ(f.index, n);
    EXPECT_GT(f.time, prev) << "frame " << n;
    EXPECT_NEAR(f.time, n / 25.0, 1e-3) << "frame " << n;
    EXPECT_NEAR(f.pts * info.time_base.value() - info.start_time, f.time, 1e-9);
    prev = f.time;
    EXPECT_EQ(strip_number(f), n) << path;
    // The field left of / right of the square's path, and the square itself.
    const Bgr c = kFields[n / 20];
    const int expect[3] = {c.b, c.g, c.r};
    for (int ch = 0; ch < 3; ++ch) {
      EXPECT_NEAR(region_mean(f, ch, 4, 36, 4, kW - 4), expect[ch], tol) << path << " frame " << n << " ch " << ch;
      EXPECT_NEAR(region_mean(f, ch, 42, 54, 2 * n + 2, 2 * n + 14), 255, 2 * tol) << path << " frame " << n;
    }
    ++n;
  }
  EXPECT_EQ(n, kFrames) << path;
  EXPECT_EQ(r.errors(), 0) << r.error_message();
  EXPECT_EQ(r.error_message(), "");
  EXPECT_FALSE(r.next(f));  // the end stays the end
}

TEST_F(VideoIo, EncodersOnThisMachine) {
  const std::vector<std::string> all = {"libx264", "libopenh264", "mpeg4", "libvpx-vp9", "libaom-av1"};
  const std::vector<std::string> have = available_encoders(all);
  std::string list;
  for (const std::string& n : have) list += n + " ";
  std::cout << "encoders present: " << list << "\n";
  EXPECT_FALSE(available_encoders({"mpeg4"}).empty());  // FFmpeg's native MPEG-4 part 2 is always built
}

TEST_F(VideoIo, Mp4RoundTrip) {
  std::string codec;
  const std::string path = write_synthetic(dir_ + "/v.mp4", {}, &codec);
  EXPECT_TRUE(codec == "libx264" || codec == "libopenh264" || codec == "mpeg4") << codec;
  VideoReader r(path);
  EXPECT_TRUE(r.info().frame_count_exact);  // mp4 counts its samples
  EXPECT_EQ(r.info().codec, codec == "mpeg4" ? "mpeg4" : "h264");
  check_round_trip(path, 4.0);
}

TEST_F(VideoIo, MkvRoundTrip) {
  const std::string path = write_synthetic(dir_ + "/v.mkv");
  VideoReader r(path);
  EXPECT_FALSE(r.info().frame_count_exact);  // Matroska does not: estimated from duration * fps
  check_round_trip(path, 4.0);
}

TEST_F(VideoIo, AviMpeg4FallbackAndQscale) {
  WriterOptions o;
  o.codecs = {"no-such-encoder", "mpeg4"};
  o.qscale = 2;
  std::string codec;
  const std::string path = write_synthetic(dir_ + "/v.avi", o, &codec);
  EXPECT_EQ(codec, "mpeg4");
  check_round_trip(path, 4.0);
}

TEST_F(VideoIo, AnalysisSizesAndFormats) {
  const std::string path = write_synthetic(dir_ + "/v.mkv");
  {
    VideoReader r(path, {.out_width = 40, .out_height = 30});
    Frame f;
    int n = 0;
    while (r.next(f)) {
      ASSERT_EQ(f.width, 40);
      ASSERT_EQ(f.height, 30);
      ASSERT_EQ(f.data.size(), size_t(40 * 30 * 3));
      const Bgr c = kFields[n / 20];
      EXPECT_NEAR(region_mean(f, 0, 1, 9, 1, 39), c.b, 4.0) << "frame " << n;
      EXPECT_NEAR(region_mean(f, 2, 1, 9, 1, 39), c.r, 4.0) << "frame " << n;
      ++n;
    }
    EXPECT_EQ(n, kFrames);
  }
  {
    VideoReader r(path, {.out_width = 80});  // height from the aspect ratio
    EXPECT_EQ(r.out_width(), 80);
    EXPECT_EQ(r.out_height(), 60);
  }
  {
    VideoReader r(path, {.format = PixelFormat::rgb24});
    Frame f;
    ASSERT_TRUE(r.next(f));
    EXPECT_NEAR(region_mean(f, 0, 4, 36, 4, kW - 4), kFields[0].r, 4.0);  // R first
    EXPECT_NEAR(region_mean(f, 2, 4, 36, 4, kW - 4), kFields[0].b, 4.0);
  }
  {
    VideoReader r(path, {.out_width = 32, .out_height = 24, .format = PixelFormat::gray8});
    Frame f;
    ASSERT_TRUE(r.next(f));
    EXPECT_EQ(f.channels, 1);
    ASSERT_EQ(f.data.size(), size_t(32 * 24));
    // BT.601 luma of the first field, full-range 8 bit: 0.114 B + 0.587 G + 0.299 R.
    const double y = 0.114 * kFields[0].b + 0.587 * kFields[0].g + 0.299 * kFields[0].r;
    EXPECT_NEAR(region_mean(f, 0, 1, 8, 1, 31), y, 4.0);
  }
}

// libx264 at crf 0 is lossless in YUV, so what comes back differs from what was written only
// by the two colour conversions (RGB -> yuv420p in the writer, yuv420p -> BGR at the source size
// with SWS_ACCURATE_RND in the reader): at most 2 LSB away from edges, where chroma subsampling
// does not mix colours.
TEST_F(VideoIo, LosslessH264ComesBackWithinTwoLsb) {
  // Debian 12's libavcodec59 (scripts/install-deps.sh) is built with libx264.
  ASSERT_FALSE(available_encoders({"libx264"}).empty()) << "no libx264 in this libavcodec";
  WriterOptions o;
  o.codecs = {"libx264"};
  o.crf = 0;
  const std::string path = write_synthetic(dir_ + "/lossless.mkv", o);
  VideoReader r(path);
  Frame f;
  int n = 0, worst = 0;
  while (r.next(f)) {
    const std::vector<uint8_t> want = synthetic_frame(n);
    for (int y = 0; y < kH; ++y) {
      if ((y >= 34 && y < 62) || (y >= kStrip - 2 && y < kStrip + 2)) continue;  // the square's rows, the strip's edge
      for (int x = 0; x < kW * 3; ++x)
        worst = std::max(worst, std::abs(int(f.data[size_t(y) * kW * 3 + x]) - int(want[size_t(y) * kW * 3 + x])));
    }
    ++n;
  }
  EXPECT_EQ(n, kFrames);
  EXPECT_LE(worst, 2);
  std::cout << "lossless h264: largest difference " << worst << " LSB\n";
}

void check_seeks(const std::string& path) {
  SCOPED_TRACE(path);
  VideoReader r(path);
  Frame f;
  // (target seconds, the frame it must land on): on a frame, between frames, on a keyframe,
  // before a keyframe, the last frame, backwards.
  const std::pair<double, int> cases[] = {{0.44, 11}, {1.23, 31}, {1.0, 25}, {0.36, 9},
                                          {2.36, 59}, {0.0, 0},   {0.02, 1}};
  for (auto [t, frame] : cases) {
    ASSERT_TRUE(r.seek(t)) << t;
    ASSERT_TRUE(r.next(f)) << t;
    EXPECT_EQ(strip_number(f), frame) << "seek " << t;
    EXPECT_EQ(f.index, frame) << "seek " << t;
    EXPECT_NEAR(f.time, frame / 25.0, 1e-3) << "seek " << t;
    EXPECT_GE(f.time, t - 1e-6);
  }
  // Reading on after a seek continues frame by frame to the clean end.
  ASSERT_TRUE(r.seek(1.6));
  int n = 40;
  while (r.next(f)) {
    EXPECT_EQ(strip_number(f), n);
    EXPECT_EQ(f.index, n);
    ++n;
  }
  EXPECT_EQ(n, kFrames);
  EXPECT_EQ(r.errors(), 0) << r.error_message();
  // Past the end: nothing.
  EXPECT_FALSE(r.seek(5.0));
  EXPECT_FALSE(r.next(f));
}

// Keyframe every 10 frames; H.264 with B-frames in mp4 (edit list) and mkv, MPEG-4 part 2 in avi.
TEST_F(VideoIo, SeekIsFrameAccurate) {
  check_seeks(write_synthetic(dir_ + "/v.mp4"));
  check_seeks(write_synthetic(dir_ + "/v.mkv"));
  WriterOptions o;
  o.codecs = {"mpeg4"};
  o.qscale = 2;
  check_seeks(write_synthetic(dir_ + "/v.avi", o));
}

// Writes the first `fraction` of src's bytes to dst.
void truncate_copy(const std::string& src, const std::string& dst, double fraction) {
  std::ifstream in(src, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dst, std::ios::binary).write(bytes.data(), std::streamsize(double(bytes.size()) * fraction));
}

TEST_F(VideoIo, TruncatedMkvDecodesWhatIsThereAndReportsDamage) {
  const std::string dir = dir_;
  const std::string full = write_synthetic(dir + "/full.mkv");
  // Half the file, and a cut that loses only the last frame or so (Matroska's index, the cues,
  // sits after the last cluster, so a cut must go deeper than it to lose frames).
  for (double fraction : {0.5, 0.97}) {
    const std::string cut = dir + fmt::format("/cut{}.mkv", fraction);
    truncate_copy(full, cut, fraction);
    VideoReader r(cut);
    Frame f;
    int n = 0;
    while (r.next(f)) {
      // What is there decodes as written, at its own time (a lost B-frame leaves a gap).
      EXPECT_EQ(strip_number(f), std::lround(f.time * 25)) << cut;
      if (n == 0) {
        EXPECT_EQ(strip_number(f), 0) << cut;
      }
      ++n;
    }
    EXPECT_GT(n, 5) << cut;
    EXPECT_LT(n, kFrames) << cut << ": the cut lost no frame (only Matroska's index)";
    EXPECT_TRUE(r.damaged()) << cut << ": " << n << " frames";
    EXPECT_GE(r.errors(), 1);
    EXPECT_NE(r.error_message().find(cut), std::string::npos) << r.error_message();
    std::cout << "cut at " << fraction << ": " << n << " frames; " << r.error_message() << "\n";
  }
}

TEST_F(VideoIo, CorruptMp4CountsErrorsAndKeepsDecoding) {
  const std::string dir = dir_;
  const std::string path = write_synthetic(dir + "/v.mp4");
  // Garble 300 bytes a third of the way in (inside the media data: the index is at the end).
  std::vector<char> bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  for (size_t i = bytes.size() / 3; i < bytes.size() / 3 + 300; ++i) bytes[i] = char(bytes[i] ^ 0x5a);
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  VideoReader r(path);
  Frame f;
  int n = 0;
  while (r.next(f)) ++n;
  EXPECT_GT(n, kFrames / 2);
  EXPECT_TRUE(r.damaged());
  EXPECT_NE(r.error_message().find("v.mp4"), std::string::npos) << r.error_message();
  std::cout << "garbled mp4: " << n << " frames; " << r.error_message() << "\n";
}

TEST_F(VideoIo, TruncatedMp4IsAClearError) {
  // libavformat's mp4 muxer writes the sample index (moov) at the end: half a file has none.
  const std::string dir = dir_;
  const std::string full = write_synthetic(dir + "/full.mp4");
  const std::string cut = dir + "/cut.mp4";
  truncate_copy(full, cut, 0.5);
  EXPECT_ERROR_MENTIONS(VideoReader{cut}, "cut.mp4");
}

TEST_F(VideoIo, BadInputsAreClearErrors) {
  const std::string dir = dir_;
  EXPECT_ERROR_MENTIONS(VideoReader{dir + "/missing.mp4"}, "missing.mp4", "does not exist");
  std::ofstream(dir + "/notes.txt") << "These are notes, not a video.\nLine two.\n";
  EXPECT_ERROR_MENTIONS(VideoReader{dir + "/notes.txt"}, "notes.txt");
  std::ofstream(dir + "/fake.mp4") << "not really an mp4 file at all";
  EXPECT_ERROR_MENTIONS(VideoReader{dir + "/fake.mp4"}, "fake.mp4");
  EXPECT_ERROR_MENTIONS(VideoReader{dir}, "is a directory");

  WriterOptions o{.width = kW, .height = kH};
  EXPECT_ERROR_MENTIONS(VideoWriter(dir + "/v.nosuchext", o), "v.nosuchext", "container");
  EXPECT_ERROR_MENTIONS(VideoWriter(dir + "/no/such/dir/v.mp4", o), "no/such/dir/v.mp4");
  EXPECT_ERROR_MENTIONS(VideoWriter(dir + "/odd.mp4", WriterOptions{.width = 33, .height = 20}), "odd.mp4", "33x20");
  o.codecs = {"no-such-encoder"};
  EXPECT_ERROR_MENTIONS(VideoWriter(dir + "/none.mp4", o), "none.mp4", "no-such-encoder");
}

}  // namespace
}  // namespace foundry::video
