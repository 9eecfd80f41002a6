// Static / blank clip detection from frames already in memory (a pipeline feeds it the
// transcoder's BGR24 output frames, so it costs no extra decode).
//
// Luma: BT.601 weights in OpenCV's integer form (cv2.cvtColor(BGR2GRAY) on 8-bit input,
// color_rgb.simd.hpp, yuv_shift = 14):
//   Y = (1868 * B + 9617 * G + 4899 * R + 8192) >> 14      (0.114, 0.587, 0.299 in 14-bit fixed point)
// Pixels: with pixel_step s, the pixels (x, y) with x % s == 0 and y % s == 0 (s = 2 reads a
// quarter of the frame; statistics of natural images change by far less than the thresholds).
// Per frame t over those n pixels:
//   mean_t = sum Y / n,   std_t = sqrt(sum (Y - mean_t)^2 / n)   (population std-dev),
//   blank_t = std_t < blank_luma_std,
//   diff_t  = sum |Y_t - Y_{t-1}| / n   (t >= 1, values 0..255).
// Clip: mean_luma = mean_t mean_t, mean_luma_std = mean_t std_t, blank_fraction = the fraction of
// blank frames, mean_frame_difference / max_frame_difference over t >= 1 (0 with fewer than 2
// frames);
//   blank     = frames > 0 && blank_fraction >= options.blank_fraction,
//   is_static = frames > 0 && mean_frame_difference < options.static_difference
// (a one-frame clip is static: nothing in it moves). A blank clip is usually static too.
#pragma once

#include <cstdint>
#include <vector>

#include "foundry/video/video_reader.h"

namespace foundry::video {

struct StaticBlankOptions {
  double blank_luma_std = 4.0;      // a frame whose luma std-dev is below this is blank
  double blank_fraction = 0.9;      // the clip is blank when at least this fraction of its frames are
  double static_difference = 0.5;   // the clip is static when its mean frame difference is below this
  int pixel_step = 2;               // read every pixel_step-th pixel of every pixel_step-th row (>= 1)
};

struct StaticBlankScores {
  int64_t frames = 0;
  double mean_luma = 0;
  double mean_luma_std = 0;
  double blank_fraction = 0;
  double mean_frame_difference = 0;
  double max_frame_difference = 0;
  bool blank = false;
  bool is_static = false;
};

class FrameStatistics {
 public:
  explicit FrameStatistics(StaticBlankOptions o = {});
  // One frame: 3 channels, BGR order (Frame from VideoReader with PixelFormat::bgr24). Every frame
  // must have the size of the first; throws foundry::Error otherwise.
  void add(const Frame& bgr);
  StaticBlankScores result() const;

 private:
  StaticBlankOptions options_;
  int width_ = 0, height_ = 0;
  std::vector<uint8_t> previous_;  // luma of the previous frame at the sampled pixels
  std::vector<uint8_t> current_;   // this frame's (reused buffer)
  int64_t frames_ = 0, blank_frames_ = 0;
  double sum_mean_ = 0, sum_std_ = 0, sum_difference_ = 0, max_difference_ = 0;
};

// The thresholds of o re-applied to recorded scores (sets blank and is_static).
StaticBlankScores apply_thresholds(StaticBlankScores s, const StaticBlankOptions& o);

}  // namespace foundry::video
