// Clip filters that look at pixels and motion (video/motion_filter.h, video/frame_statistics.h) on
// synthetic H.264 clips written with libx264: a smooth texture translated by a known (dx, dy) a
// frame, the same texture standing still, a flat grey field, and a 648x360 clip (B frames, 8x8 /
// 16x8 / 8x16 partitions, macroblocks past the frame edge) at 2 fps so that every frame is sampled.
// Decoded motion vectors point the way FFmpeg documents (src = dst + motion / scale: -d for
// content moving by +d); the motion scores equal a naive transcription of cosmos-curate's
// rasterisation (torch index_put_ over the block-size groups), mean and cv2.resize(1/256,
// INTER_LINEAR) on the same decoded vectors; the static/blank statistics equal a naive two-pass
// computation on the decoded frames; thresholds re-apply to recorded scores.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>

#include "foundry/core/check.h"
#include "foundry/video/frame_statistics.h"
#include "foundry/video/motion_filter.h"
#include "foundry/video/video_reader.h"
#include "foundry/video/video_writer.h"
#include "testing.h"

namespace foundry::video {
namespace {

namespace fs = std::filesystem;

constexpr int kW = 320, kH = 256;  // min side 256: cosmos-curate's size rule holds
constexpr int kDx = 2, kDy = 1;     // the moving clip's translation, pixels a frame

std::string scratch(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("foundry_filters_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

// A smooth texture (wavelengths 25..60 px, so block matching has one clear optimum within a few
// pixels), per channel, on a canvas with margins for the shifts used here: frame t of a clip
// moving by (dx, dy) shows canvas(x - dx t, y - dy t).
constexpr int kMargin = 100, kCanvasW = 648 + 2 * kMargin, kCanvasH = 360 + 2 * kMargin;
const std::vector<uint8_t>& canvas() {
  static const std::vector<uint8_t> c = [] {
    std::vector<uint8_t> t(size_t(kCanvasW) * kCanvasH * 3);
    for (int y = 0; y < kCanvasH; ++y)
      for (int x = 0; x < kCanvasW; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          const double v = 128 + 45 * std::sin(0.19 * x + 0.4 * std::sin(0.05 * y) + ch) +
                           40 * std::cos(0.13 * y - 0.07 * x + 2 * ch) + 25 * std::sin(0.11 * (x + y) + 0.5 * ch);
          t[(size_t(y) * kCanvasW + x) * 3 + ch] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
        }
    return t;
  }();
  return c;
}

std::vector<uint8_t> textured_frame(int w, int h, int shift_x, int shift_y) {
  FOUNDRY_CHECK(std::abs(shift_x) <= kMargin && std::abs(shift_y) <= kMargin && w <= 648 && h <= 360,
                "test canvas too small for a shift of ({}, {})", shift_x, shift_y);
  std::vector<uint8_t> f(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = canvas().data() + (size_t(y - shift_y + kMargin) * kCanvasW + kMargin - shift_x) * 3;
    std::copy(row, row + size_t(w) * 3, f.begin() + ptrdiff_t(y) * w * 3);
  }
  return f;
}

// 48 frames at 24 fps; ultrafast x264: no B frames, one reference (the previous frame), so every
// P-frame vector spans exactly one frame.
std::string write_textured(const std::string& name, int dx, int dy) {
  const std::string p = scratch(name);
  VideoWriter w(p, {.width = kW, .height = kH, .fps = {24, 1}, .crf = 12, .preset = "ultrafast"});
  EXPECT_EQ(w.codec(), "libx264");
  for (int t = 0; t < 48; ++t) w.write(textured_frame(kW, kH, dx * t, dy * t).data());
  w.close();
  return p;
}
const std::string& moving_clip() {
  static const std::string p = write_textured("moving.mp4", kDx, kDy);
  return p;
}
const std::string& static_clip() {
  static const std::string p = write_textured("static.mp4", 0, 0);
  return p;
}

// 648x360 (40.5 x 22.5 macroblocks: the last column and row of blocks lie partly or wholly past the
// picture), 12 frames at 2 fps (sampling step 1, max_frames 10), "faster" preset (B frames, 8x8
// and 16x8/8x16 partitions): the texture drifts by (3, -2) a frame and a bright square moves the
// other way.
constexpr int kRichW = 648, kRichH = 360;
const std::string& rich_clip() {
  static const std::string path = [] {
    const std::string p = scratch("rich.mp4");
    VideoWriter w(p, {.width = kRichW, .height = kRichH, .fps = {2, 1}, .crf = 16, .preset = "faster"});
    for (int t = 0; t < 12; ++t) {
      std::vector<uint8_t> f = textured_frame(kRichW, kRichH, 3 * t, -2 * t);
      for (int y = 100; y < 180; ++y)
        for (int x = 400 - 6 * t; x < 480 - 6 * t; ++x)
          for (int c = 0; c < 3; ++c) f[(size_t(y) * kRichW + x) * 3 + c] = uint8_t(230 - 20 * c);
      w.write(f.data());
    }
    w.close();
    return p;
  }();
  return path;
}

const std::string& flat_clip() {
  static const std::string path = [] {
    const std::string p = scratch("flat.mp4");
    VideoWriter w(p, {.width = kW, .height = kH, .fps = {24, 1}, .crf = 12, .preset = "ultrafast"});
    const std::vector<uint8_t> f(size_t(kW) * kH * 3, 40);
    for (int t = 0; t < 24; ++t) w.write(f.data());
    w.close();
    return p;
  }();
  return path;
}

std::vector<Frame> decode(const std::string& path, const ReaderOptions& o) {
  VideoReader r(path, o);
  std::vector<Frame> frames;
  Frame f;
  while (r.next(f)) frames.push_back(f);
  EXPECT_EQ(r.errors(), 0) << r.error_message();
  return frames;
}

// ---- naive transcriptions of cosmos-curate (motion_vector_backend.py) ---------------------------

// motion_vectors_to_flowfield for one frame: flow (H, W, 2) = 0; for each block size in
// block_options order, for each selected vector, for i in arange(-w//2, w//2), j in
// arange(-h//2, h//2): flow[clamp(dst_y + j)][clamp(dst_x + i)] = -motion / motion_scale.
std::vector<std::array<double, 2>> naive_flow(const std::vector<MotionVector>& mvs, int W, int H) {
  std::vector<std::array<double, 2>> flow(size_t(W) * H, {0.0, 0.0});
  const int block_options[4][2] = {{8, 8}, {16, 16}, {16, 8}, {8, 16}};
  for (const auto& b : block_options)
    for (const MotionVector& mv : mvs) {
      if (mv.w != b[0] || mv.h != b[1]) continue;
      for (int i = -b[0] / 2; i < b[0] / 2; ++i)
        for (int j = -b[1] / 2; j < b[1] / 2; ++j) {
          int x = mv.dst_x + i, y = mv.dst_y + j;
          x = x > 0 ? x : 0;
          y = y > 0 ? y : 0;
          x = x < W ? x : W - 1;
          y = y < H ? y : H - 1;
          flow[size_t(y) * W + x] = {-double(mv.motion_x) / mv.motion_scale, -double(mv.motion_y) / mv.motion_scale};
        }
    }
  return flow;
}

// cv2.resize(src, None, fx=1/256, fy=1/256) (INTER_LINEAR, float), then .min(): dsize =
// cvRound(n * fx) (half to even); each output pixel d maps to f = (d + 0.5) / fx - 0.5, taps
// floor(f) and floor(f) + 1 with weights 1 - frac, frac; a tap left of 0 or at/after n - 1 is
// clamped with weight 1.
double naive_resize_min(const std::vector<double>& src, int rows, int cols) {
  auto axis = [](int n, int d, int& i0, int& i1, double& w1) {
    const double f = (d + 0.5) * 256.0 - 0.5;
    i0 = int(std::floor(f));
    w1 = f - i0;
    if (i0 < 0) i0 = 0, w1 = 0;
    if (i0 >= n - 1) i0 = n - 1, w1 = 0;
    i1 = std::min(i0 + 1, n - 1);
  };
  const int out_rows = std::max(1, int(std::nearbyint(rows / 256.0)));
  const int out_cols = std::max(1, int(std::nearbyint(cols / 256.0)));
  double lowest = 1e300;
  for (int r = 0; r < out_rows; ++r)
    for (int c = 0; c < out_cols; ++c) {
      int y0, y1, x0, x1;
      double wy, wx;
      axis(rows, r, y0, y1, wy);
      axis(cols, c, x0, x1, wx);
      const double v = (1 - wy) * (1 - wx) * src[size_t(y0) * cols + x0] + (1 - wy) * wx * src[size_t(y0) * cols + x1] +
                       wy * (1 - wx) * src[size_t(y1) * cols + x0] + wy * wx * src[size_t(y1) * cols + x1];
      lowest = std::min(lowest, v);
    }
  return lowest;
}

struct NaiveMotion {
  double global_mean = 0, per_patch_min_256 = 0;
  int frames = 0;
};

// decode_for_motion + check_if_small_motion on decoded frames: frames i % step == 0 with vectors,
// at most max_frames of them; m = |flow| / (W + H); global mean and resize-min of the time mean.
NaiveMotion naive_motion(const std::vector<Frame>& frames, int step, int max_frames) {
  NaiveMotion out;
  const int W = frames.at(0).width, H = frames.at(0).height;
  std::vector<double> per_pixel(size_t(W) * H, 0.0);
  double total = 0;
  for (size_t i = 0; i < frames.size() && out.frames < max_frames; ++i) {
    if (i % step != 0 || frames[i].motion_vectors.empty()) continue;
    const auto flow = naive_flow(frames[i].motion_vectors, W, H);
    double frame_total = 0;  // summed per frame, then over frames (the implementation's order)
    for (size_t p = 0; p < flow.size(); ++p) {
      const double m = std::sqrt(flow[p][0] * flow[p][0] + flow[p][1] * flow[p][1]) / (W + H);
      per_pixel[p] += m;
      frame_total += m;
    }
    total += frame_total;
    ++out.frames;
  }
  out.global_mean = total / (double(out.frames) * W * H);
  for (double& v : per_pixel) v /= out.frames;
  out.per_patch_min_256 = naive_resize_min(per_pixel, H, W);
  return out;
}

// GRAY8 frames at the source size with the codec's motion vectors.
ReaderOptions vector_reader_options() {
  ReaderOptions o;
  o.format = PixelFormat::gray8;
  o.export_motion_vectors = true;
  return o;
}

// ---- (a) motion vectors --------------------------------------------------------------------------

TEST(MotionVectors, PointFromTheBlockToItsSourceInTheReference) {
  ReaderOptions o = vector_reader_options();
  const std::vector<Frame> frames = decode(moving_clip(), o);
  ASSERT_EQ(frames.size(), 48u);
  EXPECT_EQ(frames[0].picture_type, 'I');
  EXPECT_TRUE(frames[0].motion_vectors.empty());  // an I frame has no inter blocks
  // Content moving by (+2, +1) a frame: the block at dst came from dst - (2, 1) in the previous
  // frame, so src - dst = motion / scale = (-2, -1) (FFmpeg: src = dst + motion / motion_scale).
  int64_t interior = 0, right = 0;
  for (size_t t = 1; t < frames.size(); ++t) {
    EXPECT_EQ(frames[t].picture_type, 'P') << t;
    ASSERT_FALSE(frames[t].motion_vectors.empty()) << t;
    for (const MotionVector& mv : frames[t].motion_vectors) {
      EXPECT_EQ(mv.source, -1);  // ultrafast: past references only
      ASSERT_GT(mv.motion_scale, 0);
      EXPECT_EQ(mv.src_x, mv.dst_x + mv.motion_x / mv.motion_scale);  // AVMotionVector's definition
      EXPECT_EQ(mv.src_y, mv.dst_y + mv.motion_y / mv.motion_scale);
      // Away from the left and top borders, where the shifted texture enters the picture.
      if (mv.dst_x < 16 || mv.dst_y < 16 || mv.dst_x >= kW - 16 || mv.dst_y >= kH - 16) continue;
      ++interior;
      right += mv.motion_x == -kDx * mv.motion_scale && mv.motion_y == -kDy * mv.motion_scale;
    }
  }
  ASSERT_GT(interior, 0);
  EXPECT_GT(double(right) / double(interior), 0.9) << right << " of " << interior;
}

TEST(MotionVectors, NotExportedUnlessAsked) {
  ReaderOptions o;
  o.format = PixelFormat::gray8;
  VideoReader r(moving_clip(), o);
  Frame f;
  for (int t = 0; t < 3; ++t) {
    ASSERT_TRUE(r.next(f));
    EXPECT_TRUE(f.motion_vectors.empty());
    EXPECT_EQ(f.picture_type, t == 0 ? 'I' : 'P');
  }
}

TEST(MotionVectors, SameWithAnyThreadCount) {
  // Frame-threaded h264 exports the vectors of pictures still being decoded by another thread
  // (plain libav with 4 frame threads gave 6 different vector sets over 6 runs of the rich clip);
  // the reader decodes with slice threads only when it exports vectors.
  ReaderOptions o = vector_reader_options();
  o.threads = 1;
  const std::vector<Frame> one = decode(rich_clip(), o);
  o.threads = 4;
  const std::vector<Frame> four = decode(rich_clip(), o);
  ASSERT_EQ(one.size(), four.size());
  for (size_t t = 0; t < one.size(); ++t) {
    ASSERT_EQ(one[t].motion_vectors.size(), four[t].motion_vectors.size()) << t;
    for (size_t i = 0; i < one[t].motion_vectors.size(); ++i) {
      const MotionVector &a = one[t].motion_vectors[i], &b = four[t].motion_vectors[i];
      ASSERT_TRUE(a.source == b.source && a.w == b.w && a.h == b.h && a.dst_x == b.dst_x && a.dst_y == b.dst_y &&
                  a.motion_x == b.motion_x && a.motion_y == b.motion_y && a.motion_scale == b.motion_scale)
          << "frame " << t << " vector " << i;
    }
  }
}

// ---- (b) motion scores ---------------------------------------------------------------------------

TEST(MotionFilter, StaticClipIsLowMotionMovingClipIsNot) {
  const MotionScores still = motion_scores(static_clip());
  EXPECT_EQ(still.method, "motion_vectors");
  EXPECT_EQ(still.frames_sampled, 3);  // frames 12, 24, 36 (frame 0 is the I frame)
  EXPECT_EQ(still.global_mean, 0.0);
  EXPECT_EQ(still.per_patch_min_256, 0.0);
  EXPECT_TRUE(still.low_motion);

  const MotionScores moving = motion_scores(moving_clip());
  EXPECT_EQ(moving.method, "motion_vectors");
  EXPECT_EQ(moving.frames_sampled, 3);
  EXPECT_EQ(moving.width, kW);
  EXPECT_EQ(moving.height, kH);
  EXPECT_FALSE(moving.low_motion);
  // By construction |flow| = sqrt(2^2 + 1^2) on (nearly) every pixel: global_mean is that / (W + H),
  // short only by the border blocks whose vectors differ (at most the 0.1 of blocks not right above).
  const double expected = std::sqrt(double(kDx * kDx + kDy * kDy)) / (kW + kH);
  EXPECT_GT(moving.global_mean, 0.9 * expected);
  EXPECT_LT(moving.global_mean, 1.1 * expected);
  EXPECT_GT(moving.per_patch_min_256, 1e-6);
}

// ---- (c), (d) scores equal the naive transcription on the same decoded vectors -------------------

void expect_naive_scores(const std::string& path, int expected_step, int expected_max_frames) {
  ReaderOptions o = vector_reader_options();
  const std::vector<Frame> frames = decode(path, o);
  VideoReader info(path);
  const int step = motion_sample_step(info.info().fps_value, 2.0);
  const int max_frames = motion_max_frames(info.info().duration, 2.0, 0.5);
  EXPECT_EQ(step, expected_step);
  EXPECT_EQ(max_frames, expected_max_frames);
  const NaiveMotion naive = naive_motion(frames, step, max_frames);
  const MotionScores s = motion_scores(path);
  EXPECT_EQ(s.frames_sampled, naive.frames);
  EXPECT_NEAR(s.global_mean, naive.global_mean, 1e-12 * naive.global_mean);
  EXPECT_NEAR(s.per_patch_min_256, naive.per_patch_min_256, 1e-12 * naive.per_patch_min_256);
  EXPECT_EQ(s.low_motion, naive.global_mean < 0.00098 || naive.per_patch_min_256 < 1e-6);
}

TEST(MotionFilter, ScoresEqualNaiveTranscriptionEveryTwelfthFrame) {
  expect_naive_scores(moving_clip(), 12, 10);  // 24 fps / 2; a 2 s clip: max(10, 2)
}

TEST(MotionFilter, ScoresEqualNaiveTranscriptionWithBFramesAndEdgeBlocks) {
  // The clip must exercise what the transcription is about: bi-predicted blocks (two vectors on
  // one block: the later one wins), 8x8/16x8/8x16 blocks and blocks clamped at the frame edge.
  ReaderOptions o = vector_reader_options();
  const std::vector<Frame> frames = decode(rich_clip(), o);
  ASSERT_EQ(frames.size(), 12u);
  std::map<std::pair<int, int>, int> sizes;
  int future = 0, past_edge = 0, b_frames = 0;
  for (size_t t = 0; t < 11; ++t) {  // the frames the filter reads: 0 (I) .. 10
    b_frames += frames[t].picture_type == 'B';
    for (const MotionVector& mv : frames[t].motion_vectors) {
      ++sizes[{mv.w, mv.h}];
      future += mv.source > 0;
      past_edge += mv.dst_x + mv.w / 2 > kRichW || mv.dst_y + mv.h / 2 > kRichH;
    }
  }
  EXPECT_GT(b_frames, 0);
  EXPECT_GT(future, 0);
  EXPECT_GT(past_edge, 0);
  const auto count = [&](int w, int h) { return sizes[std::make_pair(w, h)]; };
  EXPECT_GT(count(16, 16), 0);
  EXPECT_GT(count(8, 8) + count(16, 8) + count(8, 16), 0);
  expect_naive_scores(rich_clip(), 1, 10);  // 2 fps / 2; a 6 s clip: max(10, round(2 * 6 * 0.5))
}

TEST(MotionFilter, ResizeMinSamplesLikeCv2InterLinear) {
  // Known answers: on v(y, x) = y * cols + x, bilinear sampling is exact, so the sample at output
  // (i, j) is (256 i + 127.5) * cols + (256 j + 127.5), clamped to the last pixel past n - 1.
  // 512 x 640: output 2 x 2 (2.5 rounds to 2); 384 rows: 1.5 rounds to 2, the second row sample at
  // 383.5 lies past 383 and clamps to row 383.
  for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{{512, 640}, {384, 1280}, {256, 256}, {300, 100}}) {
    std::vector<double> up(size_t(rows) * cols), down(up.size());
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x) {
        up[size_t(y) * cols + x] = y * double(cols) + x;
        down[size_t(y) * cols + x] = -(y * double(cols) + x);
      }
    const double first_x = std::min(127.5, cols - 1.0);
    EXPECT_EQ(min_of_resize_256(up.data(), rows, cols), 127.5 * cols + first_x) << rows << "x" << cols;
    EXPECT_EQ(min_of_resize_256(down.data(), rows, cols), naive_resize_min(down, rows, cols)) << rows << "x" << cols;
  }
  std::vector<double> down(size_t(384) * 640);
  for (int y = 0; y < 384; ++y)
    for (int x = 0; x < 640; ++x) down[size_t(y) * 640 + x] = -(y * 640.0 + x);
  EXPECT_EQ(min_of_resize_256(down.data(), 384, 640), -(383 * 640.0 + 383.5));
  // A random field against the naive transcription.
  std::vector<double> noise(size_t(720) * 1280);
  uint64_t state = 12345;
  for (double& v : noise) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    v = double(state >> 11) / double(1ULL << 53);
  }
  EXPECT_EQ(min_of_resize_256(noise.data(), 720, 1280), naive_resize_min(noise, 720, 1280));
}

TEST(MotionFilter, SamplingRule) {
  EXPECT_EQ(motion_sample_step(24, 2), 12);
  EXPECT_EQ(motion_sample_step(25, 2), 12);  // round(12.5) == 12 (half to even)
  EXPECT_EQ(motion_sample_step(27, 2), 14);  // round(13.5) == 14
  EXPECT_EQ(motion_sample_step(30000.0 / 1001, 2), 15);
  EXPECT_EQ(motion_sample_step(1, 2), 1);
  EXPECT_EQ(motion_sample_step(0, 2), 15);  // unknown rate: 30
  EXPECT_EQ(motion_max_frames(2.0, 2, 0.5), 10);
  EXPECT_EQ(motion_max_frames(47.9, 2, 0.5), 47);  // whole seconds: int(47.9) == 47
  EXPECT_EQ(motion_max_frames(0.5, 2, 0.5), 30);   // int(0.5) == 0: upstream's default of 30 s
  EXPECT_EQ(motion_max_frames(25, 2, 0.25), 12);   // round(12.5) == 12
}

TEST(MotionFilter, CodecWithoutVectorsFallsBackToFrameDifference) {
  // All-intra H.264 (gop 1): the decoder exports no vectors at all.
  const std::string p = scratch("intra.mp4");
  {
    VideoWriter w(p, {.width = kW, .height = kH, .fps = {4, 1}, .crf = 12, .preset = "ultrafast", .gop = 1});
    for (int t = 0; t < 12; ++t) w.write(textured_frame(kW, kH, 3 * t, 0).data());
    w.close();
  }
  ReaderOptions o;
  o.format = PixelFormat::gray8;
  const std::vector<Frame> luma = decode(p, o);
  ASSERT_EQ(luma.size(), 12u);
  // step round(4 / 2) = 2: frames 0, 2, ..., 10 (a 3 s clip: max_frames 10 >= 5 differences)
  std::vector<double> per_pixel(size_t(kW) * kH, 0.0);
  double total = 0;
  int differences = 0;
  for (size_t t = 2; t < luma.size(); t += 2, ++differences)
    for (size_t i = 0; i < per_pixel.size(); ++i) {
      const double d = std::abs(int(luma[t].data[i]) - int(luma[t - 2].data[i])) / 255.0;
      per_pixel[i] += d;
      total += d;
    }
  for (double& v : per_pixel) v /= differences;
  const MotionScores s = motion_scores(p);
  EXPECT_EQ(s.method, "frame_difference");
  EXPECT_EQ(s.frames_sampled, 6);
  EXPECT_NEAR(s.global_mean, total / (double(differences) * kW * kH), 1e-12);
  EXPECT_NEAR(s.per_patch_min_256, naive_resize_min(per_pixel, kH, kW), 1e-12);
  EXPECT_GT(s.global_mean, 0.01);  // 6 px of texture drift between sampled frames
  EXPECT_FALSE(s.low_motion);
  MotionFilterOptions strict;
  strict.frame_difference_threshold = s.global_mean * 1.01;
  EXPECT_TRUE(is_low_motion(s, strict));
}

// ---- (f) thresholds re-applied ---------------------------------------------------------------------

TEST(MotionFilter, ThresholdsReapplyToRecordedScores) {
  MotionScores s;
  s.method = "motion_vectors";
  s.global_mean = 0.002;
  s.per_patch_min_256 = 1e-5;
  MotionFilterOptions o;
  EXPECT_FALSE(is_low_motion(s, o));
  o.global_mean_threshold = 0.003;  // global mean below: low
  EXPECT_TRUE(is_low_motion(s, o));
  o = {};
  o.per_patch_min_threshold = 2e-5;  // one patch below: low
  EXPECT_TRUE(is_low_motion(s, o));
  o = {};
  o.frame_difference_threshold = 1;  // not this method's threshold
  EXPECT_FALSE(is_low_motion(s, o));
  s.method = "frame_difference";
  EXPECT_TRUE(is_low_motion(s, o));
  o.frame_difference_threshold = 0.001;
  o.per_patch_min_threshold = 1;  // not this method's threshold
  EXPECT_FALSE(is_low_motion(s, o));
}

TEST(FrameStatistics, ThresholdsReapplyToRecordedScores) {
  StaticBlankScores s;
  s.frames = 10;
  s.blank_fraction = 0.8;
  s.mean_frame_difference = 0.4;
  StaticBlankOptions o;
  StaticBlankScores r = apply_thresholds(s, o);
  EXPECT_FALSE(r.blank);
  EXPECT_TRUE(r.is_static);
  o.blank_fraction = 0.8;  // "at least"
  o.static_difference = 0.4;  // "below"
  r = apply_thresholds(s, o);
  EXPECT_TRUE(r.blank);
  EXPECT_FALSE(r.is_static);
  s.frames = 0;
  r = apply_thresholds(s, o);
  EXPECT_FALSE(r.blank);
  EXPECT_FALSE(r.is_static);
}

// ---- (e) static / blank ----------------------------------------------------------------------------

// The header's formulas, two-pass, on every step-th pixel of every step-th row.
StaticBlankScores naive_statistics(const std::vector<Frame>& frames, int step, const StaticBlankOptions& o) {
  StaticBlankScores s;
  std::vector<std::vector<double>> lumas;
  int blank = 0;
  for (const Frame& f : frames) {
    std::vector<double> y;
    for (int r = 0; r < f.height; r += step)
      for (int c = 0; c < f.width; c += step) {
        const uint8_t* p = f.pixel(r, c);
        y.push_back(double((1868 * p[0] + 9617 * p[1] + 4899 * p[2] + 8192) >> 14));
      }
    double mean = 0, var = 0;
    for (double v : y) mean += v;
    mean /= double(y.size());
    for (double v : y) var += (v - mean) * (v - mean);
    const double std_dev = std::sqrt(var / double(y.size()));
    s.mean_luma += mean / double(frames.size());
    s.mean_luma_std += std_dev / double(frames.size());
    blank += std_dev < o.blank_luma_std;
    lumas.push_back(std::move(y));
  }
  for (size_t t = 1; t < lumas.size(); ++t) {
    double d = 0;
    for (size_t i = 0; i < lumas[t].size(); ++i) d += std::abs(lumas[t][i] - lumas[t - 1][i]);
    d /= double(lumas[t].size());
    s.mean_frame_difference += d / double(lumas.size() - 1);
    s.max_frame_difference = std::max(s.max_frame_difference, d);
  }
  s.frames = int64_t(frames.size());
  s.blank_fraction = double(blank) / double(frames.size());
  return apply_thresholds(s, o);
}

StaticBlankScores statistics_of(const std::vector<Frame>& frames, const StaticBlankOptions& o) {
  FrameStatistics stats(o);
  for (const Frame& f : frames) stats.add(f);
  return stats.result();
}

void expect_equal(const StaticBlankScores& a, const StaticBlankScores& b) {
  EXPECT_EQ(a.frames, b.frames);
  EXPECT_NEAR(a.mean_luma, b.mean_luma, 1e-9);
  EXPECT_NEAR(a.mean_luma_std, b.mean_luma_std, 1e-9);
  EXPECT_EQ(a.blank_fraction, b.blank_fraction);
  EXPECT_NEAR(a.mean_frame_difference, b.mean_frame_difference, 1e-9);
  EXPECT_NEAR(a.max_frame_difference, b.max_frame_difference, 1e-9);
  EXPECT_EQ(a.blank, b.blank);
  EXPECT_EQ(a.is_static, b.is_static);
}

TEST(FrameStatistics, FlatClipIsBlankStaticTexturedIsStaticMovingIsNeither) {
  const std::vector<Frame> flat = decode(flat_clip(), {});
  const std::vector<Frame> still = decode(static_clip(), {});
  const std::vector<Frame> moving = decode(moving_clip(), {});
  for (int step : {1, 2, 3}) {
    StaticBlankOptions o;
    o.pixel_step = step;
    const StaticBlankScores f = statistics_of(flat, o), s = statistics_of(still, o), m = statistics_of(moving, o);
    expect_equal(f, naive_statistics(flat, step, o));
    expect_equal(s, naive_statistics(still, step, o));
    expect_equal(m, naive_statistics(moving, step, o));
    EXPECT_TRUE(f.blank);
    EXPECT_TRUE(f.is_static);
    EXPECT_NEAR(f.mean_luma, 40, 1.0);  // BGR (40, 40, 40) -> Y 40, after a lossy round trip
    EXPECT_FALSE(s.blank);
    EXPECT_TRUE(s.is_static);
    EXPECT_GT(s.mean_luma_std, 20);
    EXPECT_FALSE(m.blank);
    EXPECT_FALSE(m.is_static);
    EXPECT_GT(m.mean_frame_difference, 2.0);
  }
}

TEST(FrameStatistics, KnownAnswers) {
  // Left half black, right half white (luma 0 and 255): mean 127.5, std 127.5; then the halves
  // swap: every pixel changes by 255.
  Frame a;
  a.width = 4;
  a.height = 2;
  a.channels = 3;
  a.data.assign(4 * 2 * 3, 0);
  for (int y = 0; y < 2; ++y)
    for (int x = 2; x < 4; ++x)
      for (int c = 0; c < 3; ++c) a.data[size_t((y * 4 + x) * 3 + c)] = 255;
  Frame b = a;
  for (uint8_t& v : b.data) v = uint8_t(255 - v);
  StaticBlankOptions o;
  o.pixel_step = 1;
  FrameStatistics stats(o);
  stats.add(a);
  stats.add(b);
  stats.add(b);
  const StaticBlankScores s = stats.result();
  EXPECT_EQ(s.frames, 3);
  EXPECT_EQ(s.mean_luma, 127.5);
  EXPECT_EQ(s.mean_luma_std, 127.5);
  EXPECT_EQ(s.blank_fraction, 0.0);
  EXPECT_EQ(s.mean_frame_difference, 127.5);  // (255 + 0) / 2
  EXPECT_EQ(s.max_frame_difference, 255.0);
  EXPECT_FALSE(s.blank);
  EXPECT_FALSE(s.is_static);
  // Pure blue (255, 0, 0) BGR: Y = (1868 * 255 + 8192) >> 14 = 29.
  Frame blue = a;
  for (size_t i = 0; i < blue.data.size(); i += 3) blue.data[i] = 255, blue.data[i + 1] = 0, blue.data[i + 2] = 0;
  FrameStatistics one(o);
  one.add(blue);
  EXPECT_EQ(one.result().mean_luma, 29.0);
  EXPECT_TRUE(one.result().blank);
  EXPECT_TRUE(one.result().is_static);
  Frame small = a;
  small.width = 2;
  small.data.resize(2 * 2 * 3);
  EXPECT_THROW(stats.add(small), Error);
}

// ---- (g) errors ------------------------------------------------------------------------------------

TEST(MotionFilter, MissingFileIsAClearError) {
  const std::string missing = scratch("no_such_clip.mp4");
  try {
    motion_scores(missing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace foundry::video
