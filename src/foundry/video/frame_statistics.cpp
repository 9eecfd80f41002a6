// Static / blank detection (see the header for the formulas): integer BT.601 luma on a pixel grid,
// exact integer sums per frame, double statistics per clip.
#include "foundry/video/frame_statistics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "foundry/core/check.h"

namespace foundry::video {

FrameStatistics::FrameStatistics(StaticBlankOptions o) : options_(o) {
  FOUNDRY_CHECK(o.pixel_step >= 1, "frame statistics: pixel_step {} must be >= 1", o.pixel_step);
}

void FrameStatistics::add(const Frame& bgr) {
  FOUNDRY_CHECK(bgr.channels == 3, "frame statistics: frame {} has {} channels, expected BGR (3)", bgr.index,
                bgr.channels);
  FOUNDRY_CHECK(bgr.width > 0 && bgr.height > 0 && bgr.data.size() == size_t(bgr.width) * bgr.height * 3,
                "frame statistics: frame {} of {}x{} holds {} bytes", bgr.index, bgr.width, bgr.height,
                bgr.data.size());
  if (frames_ == 0) {
    width_ = bgr.width;
    height_ = bgr.height;
  }
  FOUNDRY_CHECK(bgr.width == width_ && bgr.height == height_, "frame statistics: frame {} is {}x{}, the first {}x{}",
                bgr.index, bgr.width, bgr.height, width_, height_);
  const int step = options_.pixel_step;
  // luma (n) at the sampled pixels, row by row
  const int columns = (width_ + step - 1) / step, rows = (height_ + step - 1) / step;
  std::vector<uint8_t>& luma = current_;
  luma.resize(size_t(columns) * rows);
  int64_t sum = 0, sum_squares = 0;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* p = bgr.data.data() + size_t(r) * step * width_ * 3;  // B, G, R
    uint8_t* out = luma.data() + size_t(r) * columns;
    int64_t row_sum = 0, row_squares = 0;
    for (int c = 0; c < columns; ++c, p += 3 * step) {
      const int v = (1868 * p[0] + 9617 * p[1] + 4899 * p[2] + 8192) >> 14;
      out[c] = uint8_t(v);
      row_sum += v;
      row_squares += v * v;
    }
    sum += row_sum;
    sum_squares += row_squares;
  }
  const int64_t n = int64_t(luma.size());
  // variance = (n * sum Y^2 - (sum Y)^2) / n^2, exact in 128-bit integers
  const __int128 spread = __int128(n) * sum_squares - __int128(sum) * sum;
  const double mean = double(sum) / double(n);
  const double std_dev = std::sqrt(double(spread) / (double(n) * double(n)));
  sum_mean_ += mean;
  sum_std_ += std_dev;
  if (std_dev < options_.blank_luma_std) ++blank_frames_;
  if (frames_ > 0) {
    int64_t absolute = 0;
    for (int64_t i = 0; i < n; ++i) absolute += std::abs(int(luma[size_t(i)]) - int(previous_[size_t(i)]));
    const double difference = double(absolute) / double(n);
    sum_difference_ += difference;
    max_difference_ = std::max(max_difference_, difference);
  }
  std::swap(previous_, current_);
  ++frames_;
}

StaticBlankScores FrameStatistics::result() const {
  StaticBlankScores s;
  s.frames = frames_;
  if (frames_ > 0) {
    s.mean_luma = sum_mean_ / double(frames_);
    s.mean_luma_std = sum_std_ / double(frames_);
    s.blank_fraction = double(blank_frames_) / double(frames_);
  }
  if (frames_ > 1) {
    s.mean_frame_difference = sum_difference_ / double(frames_ - 1);
    s.max_frame_difference = max_difference_;
  }
  return apply_thresholds(s, options_);
}

StaticBlankScores apply_thresholds(StaticBlankScores s, const StaticBlankOptions& o) {
  s.blank = s.frames > 0 && s.blank_fraction >= o.blank_fraction;
  s.is_static = s.frames > 0 && s.mean_frame_difference < o.static_difference;
  return s;
}

}  // namespace foundry::video
