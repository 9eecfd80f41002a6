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

// ---- edges: OpenCV Canny (imgproc/src/canny.cpp, aperture 3, L1 gradient) and dilate ---------
std::vector<uint8_t> canny_opencv(std::span<const uint8_t> img, int w, int h, int low, int high) {
  FOUNDRY_CHECK(w > 0 && h > 0 && img.size() == static_cast<size_t>(w) * h, "canny_opencv: {} bytes for {}x{}",
                img.size(), w, h);
  if (low > high) std::swap(low, high);
  auto at = [&](int y, int x) {  // BORDER_REPLICATE
    return static_cast<int>(img[static_cast<size_t>(std::clamp(y, 0, h - 1)) * w + std::clamp(x, 0, w - 1)]);
  };
  const size_t n = static_cast<size_t>(w) * h;
  std::vector<int> dx(n), dy(n), mag(n);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t i = static_cast<size_t>(y) * w + x;
      dx[i] = at(y - 1, x + 1) + 2 * at(y, x + 1) + at(y + 1, x + 1) - at(y - 1, x - 1) - 2 * at(y, x - 1) -
              at(y + 1, x - 1);
      dy[i] = at(y + 1, x - 1) + 2 * at(y + 1, x) + at(y + 1, x + 1) - at(y - 1, x - 1) - 2 * at(y - 1, x) -
              at(y - 1, x + 1);
      mag[i] = std::abs(dx[i]) + std::abs(dy[i]);
    }
  auto m_at = [&](int y, int x) {  // magnitude, 0 outside the image
    return (y < 0 || y >= h || x < 0 || x >= w) ? 0 : mag[static_cast<size_t>(y) * w + x];
  };
  // Non-maximum suppression: 0 = candidate, 1 = not an edge, 2 = edge (the map OpenCV keeps).
  constexpr int kShift = 15;
  const int tg22 = static_cast<int>(0.4142135623730950488016887242097 * (1 << kShift) + 0.5);
  std::vector<uint8_t> map(n, 1);
  std::vector<size_t> stack;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t i = static_cast<size_t>(y) * w + x;
      const int m = mag[i];
      if (m <= low) continue;
      const int xs = dx[i], ys = dy[i];
      const int64_t ax = std::abs(xs), ay = static_cast<int64_t>(std::abs(ys)) << kShift;
      const int64_t tg22x = ax * tg22;
      bool local_max;
      if (ay < tg22x) {
        local_max = m > m_at(y, x - 1) && m >= m_at(y, x + 1);
      } else {
        const int64_t tg67x = tg22x + (ax << (kShift + 1));
        if (ay > tg67x) {
          local_max = m > m_at(y - 1, x) && m >= m_at(y + 1, x);
        } else {
          const int sgn = (xs ^ ys) < 0 ? -1 : 1;
          local_max = m > m_at(y - 1, x - sgn) && m > m_at(y + 1, x + sgn);
        }
      }
      if (!local_max) continue;
      if (m > high) {
        map[i] = 2;
        stack.push_back(i);
      } else {
        map[i] = 0;
      }
    }
  // Hysteresis: candidates 8-connected to an edge become edges.
  while (!stack.empty()) {
    const size_t i = stack.back();
    stack.pop_back();
    const int y = static_cast<int>(i / w), x = static_cast<int>(i % w);
    for (int oy = -1; oy <= 1; ++oy)
      for (int ox = -1; ox <= 1; ++ox) {
        const int yy = y + oy, xx = x + ox;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const size_t j = static_cast<size_t>(yy) * w + xx;
        if (map[j] == 0) {
          map[j] = 2;
          stack.push_back(j);
        }
      }
  }
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = map[i] == 2 ? 255 : 0;
  return out;
}

std::vector<uint8_t> dilate_box(std::span<const uint8_t> img, int w, int h, int k) {
  FOUNDRY_CHECK(k >= 1 && k % 2 == 1, "dilate_box: kernel size {} must be odd", k);
  const int r = k / 2;
  std::vector<uint8_t> rows(img.size()), out(img.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t v = 0;
      for (int xx = std::max(0, x - r); xx <= std::min(w - 1, x + r); ++xx) v = std::max(v, img[static_cast<size_t>(y) * w + xx]);
      rows[static_cast<size_t>(y) * w + x] = v;
    }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t v = 0;
      for (int yy = std::max(0, y - r); yy <= std::min(h - 1, y + r); ++yy) v = std::max(v, rows[static_cast<size_t>(yy) * w + x]);
      out[static_cast<size_t>(y) * w + x] = v;
    }
  return out;
}

int estimated_kernel_size(int w, int h) {
  // 4 + round(sqrt(w*h) / 192) (Python round: half to even), bumped to odd.
  int k = 4 + static_cast<int>(std::nearbyint(std::sqrt(static_cast<double>(w) * h) / 192.0));
  if (k % 2 == 0) ++k;
  return k;
}

std::vector<uint8_t> detect_edges(std::span<const uint8_t> lum, int w, int h, int kernel_size) {
  // numpy.median (mean of the two middle values for an even count), sigma = 1/3.
  std::vector<uint8_t> sorted(lum.begin(), lum.end());
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : (static_cast<double>(sorted[n / 2 - 1]) + sorted[n / 2]) / 2.0;
  const double sigma = 1.0 / 3.0;
  const int low = static_cast<int>(std::max(0.0, (1.0 - sigma) * median));
  const int high = static_cast<int>(std::min(255.0, (1.0 + sigma) * median));
  return dilate_box(canny_opencv(lum, w, h, low, high), w, h, kernel_size > 0 ? kernel_size : estimated_kernel_size(w, h));
}

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
  FOUNDRY_CHECK(opt.kernel_size == 0 || (opt.kernel_size >= 3 && opt.kernel_size % 2 == 1),
                "ContentDetector: kernel_size {} must be an odd integer >= 3 (or 0: from the frame size)",
                opt.kernel_size);
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
  const bool edges = w_.edges > 0.0 || opt_.compute_edges;
  if (edges) edges_[cur_] = detect_edges(cur[2], f.width, f.height, opt_.kernel_size);

  last_ = FrameScore{};
  last_.frame = f.index;
  if (have_last_) {
    const auto& prev = hsv_[cur_ ^ 1];
    last_.has_metrics = true;
    last_.delta_hue = mean_pixel_distance(cur[0], prev[0]);
    last_.delta_sat = mean_pixel_distance(cur[1], prev[1]);
    last_.delta_lum = mean_pixel_distance(cur[2], prev[2]);
    last_.delta_edges = edges && !edges_[cur_ ^ 1].empty() ? mean_pixel_distance(edges_[cur_], edges_[cur_ ^ 1]) : 0.0;
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
  if (!edges) edges_[cur_].clear();
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
                                      .luma_only = opt.luma_only, .compute_edges = opt.compute_edges,
                                      .kernel_size = opt.kernel_size}) {
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
