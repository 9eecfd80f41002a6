// Motion filter (see the header for the algorithm and its source, cosmos-curate's
// motion_vector_backend.py): sample frames, rasterise their motion vectors into a flow magnitude
// field, average over time, score; frame differences of the decoded luma when no vectors exist.
#include "foundry/video/motion_filter.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "foundry/core/check.h"
#include "foundry/video/video_reader.h"

namespace foundry::video {

namespace {

// Python's round(): half to even (the default FE_TONEAREST mode of nearbyint).
double round_half_even(double x) { return std::nearbyint(x); }

// Upstream's block sizes in its write order (w, h): 8x8, 16x16, 16x8, 8x16.
constexpr std::array<std::array<int, 2>, 4> kBlockOrder = {{{8, 8}, {16, 16}, {16, 8}, {8, 16}}};

// magnitude (H x W) = |flow| / (W + H) of one frame's vectors, rasterised as in the header
// (step 2). Every pixel is written: zero where no block lands.
void rasterise_magnitude(const std::vector<MotionVector>& mvs, int width, int height, std::vector<double>& magnitude) {
  std::fill(magnitude.begin(), magnitude.end(), 0.0);
  for (const auto& [bw, bh] : kBlockOrder) {
    for (const MotionVector& mv : mvs) {
      if (mv.w != bw || mv.h != bh || mv.motion_scale == 0) continue;
      const double dx = -double(mv.motion_x) / mv.motion_scale;
      const double dy = -double(mv.motion_y) / mv.motion_scale;
      const double m = std::sqrt(dx * dx + dy * dy) / double(width + height);
      // Pixels dst - size/2 .. dst + size/2 - 1, each coordinate clamped to the frame: the set of
      // written pixels is the rectangle between the clamped first and last coordinates.
      const int x0 = std::clamp(mv.dst_x - bw / 2, 0, width - 1), x1 = std::clamp(mv.dst_x + bw / 2 - 1, 0, width - 1);
      const int y0 = std::clamp(mv.dst_y - bh / 2, 0, height - 1), y1 = std::clamp(mv.dst_y + bh / 2 - 1, 0, height - 1);
      for (int y = y0; y <= y1; ++y) std::fill(&magnitude[size_t(y) * width + x0], &magnitude[size_t(y) * width + x1] + 1, m);
    }
  }
}

// Running sums of a per-pixel score: global sum and per-pixel sum over frames.
struct Accumulator {
  std::vector<double> per_pixel;  // (H, W)
  double total = 0;
  int frames = 0;
  void add(const std::vector<double>& field) {
    if (per_pixel.empty()) per_pixel.assign(field.size(), 0.0);
    double sum = 0;
    for (size_t i = 0; i < field.size(); ++i) {
      per_pixel[i] += field[i];
      sum += field[i];
    }
    total += sum;
    ++frames;
  }
  // global mean and the per-patch minimum of the per-pixel time mean
  void scores(int width, int height, MotionScores& s) const {
    s.frames_sampled = frames;
    if (frames == 0) return;
    s.global_mean = total / (double(frames) * width * height);
    std::vector<double> mean(per_pixel.size());
    for (size_t i = 0; i < mean.size(); ++i) mean[i] = per_pixel[i] / frames;
    s.per_patch_min_256 = min_of_resize_256(mean.data(), height, width);
  }
};

}  // namespace

int motion_sample_step(double fps, double target_fps) {
  FOUNDRY_CHECK(target_fps > 0, "motion filter: target_fps {} must be > 0", target_fps);
  if (!(fps > 0)) fps = 30;  // upstream: average rate, else base rate, else 30
  return std::max(1, int(round_half_even(fps / target_fps)));
}

int motion_max_frames(double duration_seconds, double target_fps, double target_duration_ratio) {
  double whole_seconds = std::trunc(std::max(duration_seconds, 0.0));
  if (whole_seconds <= 0) whole_seconds = 30;  // upstream's default when the duration is unknown
  return std::max(10, int(round_half_even(target_fps * (whole_seconds * target_duration_ratio))));
}

double min_of_resize_256(const double* src, int rows, int cols) {
  FOUNDRY_CHECK(rows > 0 && cols > 0, "resize of an empty {}x{} field", rows, cols);
  // One axis of cv::resize's INTER_LINEAR table (resizeGeneric): source index and weight of
  // the second tap for each output index, scale = 1 / fx = 256.
  struct Tap {
    int index;
    double frac;
  };
  const auto taps = [](int n) {
    const int out = std::max(1, int(round_half_even(n / 256.0)));  // cv2 fails for out == 0; see the header
    std::vector<Tap> t(out);
    for (int d = 0; d < out; ++d) {
      const float f = float((d + 0.5) * 256.0 - 0.5);
      int s = int(std::floor(f));
      double frac = f - float(s);
      if (s < 0) s = 0, frac = 0;
      if (s >= n - 1) s = n - 1, frac = 0;
      t[d] = {s, frac};
    }
    return t;
  };
  const std::vector<Tap> ys = taps(rows), xs = taps(cols);
  double lowest = std::numeric_limits<double>::infinity();
  for (const Tap& ty : ys) {
    const double* r0 = src + size_t(ty.index) * cols;
    const double* r1 = ty.frac > 0 ? r0 + cols : r0;
    for (const Tap& tx : xs) {
      const int x1 = tx.frac > 0 ? tx.index + 1 : tx.index;
      const double top = r0[tx.index] * (1 - tx.frac) + r0[x1] * tx.frac;
      const double bottom = r1[tx.index] * (1 - tx.frac) + r1[x1] * tx.frac;
      lowest = std::min(lowest, top * (1 - ty.frac) + bottom * ty.frac);
    }
  }
  return lowest;
}

bool is_low_motion(const MotionScores& s, const MotionFilterOptions& o) {
  if (s.method == "frame_difference") return s.global_mean < o.frame_difference_threshold;
  return s.global_mean < o.global_mean_threshold || s.per_patch_min_256 < o.per_patch_min_threshold;
}

MotionScores motion_scores(const std::string& clip_path, const MotionFilterOptions& options) {
  ReaderOptions ro;
  ro.format = PixelFormat::gray8;  // source size: the luma plane, cheap, and what the fallback needs
  ro.export_motion_vectors = true;
  ro.threads = options.threads;
  VideoReader reader(clip_path, ro);
  const int width = reader.out_width(), height = reader.out_height();
  const int step = motion_sample_step(reader.info().fps_value, options.target_fps);
  const int max_frames = motion_max_frames(reader.info().duration, options.target_fps, options.target_duration_ratio);

  Accumulator flow, difference;
  std::vector<double> field(size_t(width) * height);
  std::vector<uint8_t> previous_luma;
  int luma_frames = 0;
  Frame frame;
  int64_t decoded = 0;
  for (int64_t i = 0; reader.next(frame); ++i) {
    ++decoded;
    if (i % step != 0) continue;
    FOUNDRY_CHECK(frame.width == width && frame.height == height, "'{}': frame {} is {}x{}, the stream {}x{}",
                  clip_path, i, frame.width, frame.height, width, height);
    if (!frame.motion_vectors.empty()) {
      rasterise_magnitude(frame.motion_vectors, width, height, field);
      flow.add(field);
      if (flow.frames >= max_frames) break;
    }
    // Fallback: |Y_t - Y_{t-1}| / 255 between consecutive sampled frames, max_frames differences.
    if (flow.frames == 0 && luma_frames <= max_frames) {
      if (luma_frames > 0) {
        for (size_t p = 0; p < field.size(); ++p) field[p] = std::abs(int(frame.data[p]) - int(previous_luma[p])) / 255.0;
        difference.add(field);
      }
      previous_luma = frame.data;
      ++luma_frames;
    }
  }
  FOUNDRY_CHECK(decoded > 0, "'{}': no frame decoded for the motion filter{}{}", clip_path,
                reader.damaged() ? ": " : "", reader.error_message());

  MotionScores s;
  s.width = width;
  s.height = height;
  s.decode_errors = reader.errors();
  if (flow.frames > 0) {
    s.method = "motion_vectors";
    flow.scores(width, height, s);
  } else {
    s.method = "frame_difference";
    difference.scores(width, height, s);
    s.frames_sampled = luma_frames;
  }
  s.low_motion = is_low_motion(s, options);
  return s;
}

}  // namespace foundry::video
