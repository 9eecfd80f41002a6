// PySceneDetect 0.7.2 ContentDetector / AdaptiveDetector / FlashFilter and OpenCV's 8-bit
// BGR2HSV; the formulas and their sources are in content_detector.h.
#include "foundry/video/content_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>

#include "foundry/core/check.h"

namespace foundry::video {

namespace {

constexpr int kHsvShift = 12;

struct HsvTables {
  std::array<int, 256> sdiv{}, hdiv{};
  HsvTables() {
    // cvRound = round half to even (lrint in the default rounding mode).
    for (int i = 1; i < 256; ++i) {
      sdiv[i] = static_cast<int>(std::lrint(static_cast<double>(255 << kHsvShift) / i));
      hdiv[i] = static_cast<int>(std::lrint(static_cast<double>(180 << kHsvShift) / (6.0 * i)));
    }
  }
};

const HsvTables& hsv_tables() {
  static const HsvTables t;
  return t;
}

inline void hsv_pixel(const HsvTables& t, int b, int g, int r, uint8_t& ho, uint8_t& so, uint8_t& vo) {
  const int v = std::max({b, g, r});
  const int diff = v - std::min({b, g, r});
  const int s = (diff * t.sdiv[v] + (1 << (kHsvShift - 1))) >> kHsvShift;
  int h = v == r ? g - b : v == g ? b - r + 2 * diff : r - g + 4 * diff;
  h = (h * t.hdiv[diff] + (1 << (kHsvShift - 1))) >> kHsvShift;
  if (h < 0) h += 180;
  ho = static_cast<uint8_t>(h);
  so = static_cast<uint8_t>(s);
  vo = static_cast<uint8_t>(v);
}

// scenedetect _mean_pixel_distance: integer sum of |a - b|, divided by the pixel count as double.
double mean_pixel_distance(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int64_t sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::abs(static_cast<int>(a[i]) - static_cast<int>(b[i]));
  return static_cast<double>(sum) / static_cast<double>(a.size());
}

}  // namespace

void bgr_to_hsv_opencv(uint8_t b, uint8_t g, uint8_t r, uint8_t& h, uint8_t& s, uint8_t& v) {
  hsv_pixel(hsv_tables(), b, g, r, h, s, v);
}

void bgr_to_hsv_opencv(std::span<const uint8_t> bgr, std::span<uint8_t> hue, std::span<uint8_t> sat,
                       std::span<uint8_t> lum) {
  const size_t n = hue.size();
  FOUNDRY_CHECK(bgr.size() == 3 * n && sat.size() == n && lum.size() == n,
                "bgr_to_hsv_opencv: {} BGR bytes for planes of {}, {}, {} pixels", bgr.size(), hue.size(),
                sat.size(), lum.size());
  const HsvTables& t = hsv_tables();
  for (size_t i = 0; i < n; ++i) hsv_pixel(t, bgr[3 * i], bgr[3 * i + 1], bgr[3 * i + 2], hue[i], sat[i], lum[i]);
}

// ---- FlashFilter (scenedetect/detector.py) ----------------------------------------------------
std::optional<int64_t> FlashFilter::filter(int64_t frame, bool above) {
  if (length_ <= 0) return above ? std::optional<int64_t>(frame) : std::nullopt;
  if (!last_above_) last_above_ = frame;
  const bool min_length_met = frame - *last_above_ >= length_;
  if (mode_ == FlashMode::suppress) {
    if (!(above && min_length_met)) return std::nullopt;
    last_above_ = frame;
    return frame;
  }
  if (above) last_above_ = frame;
  if (merge_triggered_) {
    if (min_length_met && !above && *last_above_ - *merge_start_ >= length_) {
      merge_triggered_ = false;
      return *last_above_;
    }
    return std::nullopt;
  }
  if (!above) return std::nullopt;
  if (min_length_met) {
    merge_enabled_ = true;
    return frame;
  }
  if (merge_enabled_) {
    merge_triggered_ = true;
    merge_start_ = frame;
  }
  return std::nullopt;
}

// ---- ContentDetector -------------------------------------------------------------------------
ContentDetector::ContentDetector(ContentDetectorOptions opt)
    : opt_(opt), w_(opt.luma_only ? ContentWeights{0.0, 0.0, 1.0, 0.0} : opt.weights),
      flash_(opt.filter_mode, opt.min_scene_len) {
  FOUNDRY_CHECK(w_.edges == 0.0, "ContentDetector: edge weight {} is not supported (edges are not implemented)",
                w_.edges);
  const double wsum = std::abs(w_.hue) + std::abs(w_.sat) + std::abs(w_.lum) + std::abs(w_.edges);
  FOUNDRY_CHECK(wsum > 0.0, "ContentDetector: all component weights are 0");
}

const FrameScore& ContentDetector::score(const FrameRef& f) {
  FOUNDRY_CHECK(f.width > 0 && f.height > 0, "ContentDetector: frame {} has size {}x{}", f.index, f.width, f.height);
  const size_t n = static_cast<size_t>(f.width) * static_cast<size_t>(f.height);
  FOUNDRY_CHECK(f.bgr.size() == 3 * n, "ContentDetector: frame {} has {} bytes, expected {}x{}x3 = {}", f.index,
                f.bgr.size(), f.width, f.height, 3 * n);
  if (have_last_) {
    FOUNDRY_CHECK(f.width == width_ && f.height == height_,
                  "ContentDetector: frame {} is {}x{}, earlier frames were {}x{}", f.index, f.width, f.height,
                  width_, height_);
  }
  width_ = f.width;
  height_ = f.height;
  auto& cur = hsv_[cur_];
  for (auto& plane : cur) plane.resize(n);
  bgr_to_hsv_opencv(f.bgr, cur[0], cur[1], cur[2]);

  last_ = FrameScore{};
  last_.frame = f.index;
  if (have_last_) {
    const auto& prev = hsv_[cur_ ^ 1];
    last_.has_metrics = true;
    last_.delta_hue = mean_pixel_distance(cur[0], prev[0]);
    last_.delta_sat = mean_pixel_distance(cur[1], prev[1]);
    last_.delta_lum = mean_pixel_distance(cur[2], prev[2]);
    last_.delta_edges = 0.0;
    // Python: sum(c * w for ...) / sum(abs(w) for ...), both left to right from int 0.
    double num = 0.0;
    num += last_.delta_hue * w_.hue;
    num += last_.delta_sat * w_.sat;
    num += last_.delta_lum * w_.lum;
    num += last_.delta_edges * w_.edges;
    double den = 0.0;
    den += std::abs(w_.hue);
    den += std::abs(w_.sat);
    den += std::abs(w_.lum);
    den += std::abs(w_.edges);
    last_.content_val = num / den;
  }
  have_last_ = true;
  cur_ ^= 1;
  scores_.push_back(last_);
  return last_;
}

std::optional<int64_t> ContentDetector::process(const FrameRef& f) {
  const FrameScore& s = score(f);
  return flash_.filter(f.index, s.content_val >= opt_.threshold);
}

// ---- AdaptiveDetector ------------------------------------------------------------------------
AdaptiveDetector::AdaptiveDetector(AdaptiveDetectorOptions opt)
    : opt_(opt),
      content_(ContentDetectorOptions{.threshold = 255.0, .min_scene_len = 0, .weights = opt.weights,
                                      .luma_only = opt.luma_only}) {
  FOUNDRY_CHECK(opt.window_width >= 1, "AdaptiveDetector: window_width {} must be at least 1", opt.window_width);
}

std::optional<int64_t> AdaptiveDetector::process(const FrameRef& f) {
  const FrameScore& s = content_.score(f);
  if (!last_cut_) last_cut_ = f.index;
  const size_t required = 1 + 2 * static_cast<size_t>(opt_.window_width);
  buffer_.emplace_back(f.index, s.content_val);
  if (buffer_.size() < required) return std::nullopt;
  while (buffer_.size() > required) buffer_.pop_front();
  const auto [target_frame, target_score] = buffer_[opt_.window_width];
  double sum = 0.0;
  for (size_t i = 0; i < buffer_.size(); ++i)
    if (i != static_cast<size_t>(opt_.window_width)) sum += buffer_[i].second;
  const double average = sum / (2.0 * opt_.window_width);
  double ratio = 0.0;
  if (!(std::abs(average) < 0.00001))
    ratio = std::min(target_score / average, 255.0);
  else if (target_score >= opt_.min_content_val)
    ratio = 255.0;
  ratios_.emplace_back(target_frame, ratio);
  const bool threshold_met = ratio >= opt_.adaptive_threshold && target_score >= opt_.min_content_val;
  const bool min_length_met = target_frame - *last_cut_ >= opt_.min_scene_len;
  if (threshold_met && min_length_met) {
    last_cut_ = target_frame;
    return target_frame;
  }
  return std::nullopt;
}

// ---- scenes and timecodes --------------------------------------------------------------------
std::vector<Scene> scenes_from_cuts(std::span<const int64_t> cuts, int64_t start, int64_t end) {
  FOUNDRY_CHECK(start <= end, "scenes_from_cuts: start {} after end {}", start, end);
  std::vector<Scene> scenes;
  int64_t last = start;
  for (int64_t c : cuts) {
    FOUNDRY_CHECK(c > last && c < end, "scenes_from_cuts: cut {} not increasing inside ({}, {})", c, last, end);
    scenes.push_back({last, c});
    last = c;
  }
  scenes.push_back({last, end});
  return scenes;
}

double frame_seconds(int64_t frame, double fps) {
  FOUNDRY_CHECK(fps > 0.0, "frame_seconds: fps {} must be positive", fps);
  return static_cast<double>(frame) / fps;
}

std::string frame_timecode(int64_t frame, double fps) {
  // FrameTimecode.get_timecode(precision=3, use_rounding=True).
  double secs = frame_seconds(frame, fps);
  int64_t hrs = static_cast<int64_t>(secs / 3600.0);
  secs -= static_cast<double>(hrs) * 3600.0;
  int64_t mins = static_cast<int64_t>(secs / 60.0);
  secs = std::max(0.0, secs - static_cast<double>(mins) * 60.0);
  // round(secs, 3) then "%.4f" truncated to 3 decimals == the correctly rounded 3-decimal string.
  std::string ms = fmt::format("{:.3f}", secs);
  if (std::stod(ms) >= 60.0) {
    ms = "0.000";
    if (++mins >= 60) {
      mins = 0;
      ++hrs;
    }
  }
  const size_t dot = ms.find('.');
  return fmt::format("{:02d}:{:02d}:{:0>2}{}", hrs, mins, ms.substr(0, dot), ms.substr(dot));
}

}  // namespace foundry::video
