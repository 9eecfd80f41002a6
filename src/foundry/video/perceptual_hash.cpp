// pHash (imagehash's phash, hash_size 8, highfreq_factor 4) with an exact area resize; clip
// fingerprints and their distance. Formulas and the two differences from imagehash: the header.
#include "foundry/video/perceptual_hash.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numbers>

#include "foundry/core/check.h"

namespace foundry::video {
namespace {

constexpr double kSnapToZero = 1e-6;  // |DCT coefficient| below this is rounding noise of an exact 0

// Overlap of source cell i, [dst*i, dst*i + dst), with output cell o, [src*o, src*o + src), on an
// axis scaled by dst*src: integers, summing to src over i for each o.
struct AxisWeights {
  std::vector<int> first;                // (dst) first source index with a non-zero overlap
  std::vector<std::vector<int64_t>> w;   // (dst, k) overlaps of sources first[o] .. first[o] + k - 1
};

AxisWeights axis_weights(int src, int dst) {
  AxisWeights a;
  a.first.resize(static_cast<size_t>(dst));
  a.w.resize(static_cast<size_t>(dst));
  for (int o = 0; o < dst; ++o) {
    const int64_t lo = int64_t(src) * o, hi = lo + src;  // the output cell
    const int i0 = static_cast<int>(lo / dst);
    const int i1 = static_cast<int>((hi + dst - 1) / dst);  // one past the last source cell touched
    a.first[static_cast<size_t>(o)] = i0;
    for (int i = i0; i < i1; ++i) {
      const int64_t overlap = std::min<int64_t>(int64_t(dst) * i + dst, hi) - std::max<int64_t>(int64_t(dst) * i, lo);
      a.w[static_cast<size_t>(o)].push_back(overlap);
    }
  }
  return a;
}

// cos_table[k][n] = 2 cos(pi k (2n + 1) / (2 * 32)): one axis of the unnormalised DCT-II, k < 8.
const std::array<std::array<double, kPhashSize>, kPhashLow>& cos_table() {
  static const auto table = [] {
    std::array<std::array<double, kPhashSize>, kPhashLow> t{};
    for (int k = 0; k < kPhashLow; ++k)
      for (int n = 0; n < kPhashSize; ++n)
        t[k][n] = 2.0 * std::cos(std::numbers::pi * k * (2 * n + 1) / (2.0 * kPhashSize));
    return t;
  }();
  return table;
}

}  // namespace

std::array<uint8_t, kPhashSize * kPhashSize> resize_area_32(const uint8_t* gray, int width, int height) {
  FOUNDRY_CHECK(gray != nullptr && width > 0 && height > 0, "resize_area_32: empty image ({}x{})", width, height);
  const AxisWeights wy = axis_weights(height, kPhashSize), wx = axis_weights(width, kPhashSize);
  // rows[o][x] = sum_y wy[o][y] * gray[y][x]: (32, W), exact.
  std::vector<int64_t> rows(static_cast<size_t>(kPhashSize) * width, 0);
  for (int o = 0; o < kPhashSize; ++o) {
    int64_t* out = rows.data() + static_cast<size_t>(o) * width;
    const auto& weights = wy.w[static_cast<size_t>(o)];
    for (size_t k = 0; k < weights.size(); ++k) {
      const uint8_t* in = gray + static_cast<size_t>(wy.first[static_cast<size_t>(o)] + k) * width;
      for (int x = 0; x < width; ++x) out[x] += weights[k] * in[x];
    }
  }
  // sum[o][p] = sum_x wx[p][x] * rows[o][x]; the mean divides by the cell area H * W (scaled units).
  const int64_t area = int64_t(height) * width;
  std::array<uint8_t, kPhashSize * kPhashSize> small{};
  for (int o = 0; o < kPhashSize; ++o)
    for (int p = 0; p < kPhashSize; ++p) {
      const auto& weights = wx.w[static_cast<size_t>(p)];
      const int64_t* in = rows.data() + static_cast<size_t>(o) * width + wx.first[static_cast<size_t>(p)];
      int64_t sum = 0;
      for (size_t k = 0; k < weights.size(); ++k) sum += weights[k] * in[k];
      small[static_cast<size_t>(o * kPhashSize + p)] = static_cast<uint8_t>((2 * sum + area) / (2 * area));
    }
  return small;
}

std::array<double, kPhashLow * kPhashLow> dct_low_8x8(const uint8_t* small) {
  const auto& c = cos_table();
  // Along axis 0 (rows): a[u][x] = sum_y c[u][y] small[y][x], (8, 32).
  std::array<std::array<double, kPhashSize>, kPhashLow> a{};
  for (int u = 0; u < kPhashLow; ++u)
    for (int y = 0; y < kPhashSize; ++y)
      for (int x = 0; x < kPhashSize; ++x) a[u][x] += c[u][y] * small[y * kPhashSize + x];
  // Along axis 1: d[u][v] = sum_x c[v][x] a[u][x], (8, 8).
  std::array<double, kPhashLow * kPhashLow> d{};
  for (int u = 0; u < kPhashLow; ++u)
    for (int v = 0; v < kPhashLow; ++v) {
      double s = 0;
      for (int x = 0; x < kPhashSize; ++x) s += c[v][x] * a[u][x];
      d[static_cast<size_t>(u * kPhashLow + v)] = std::abs(s) < kSnapToZero ? 0.0 : s;
    }
  return d;
}

uint64_t phash_bits(const std::array<double, kPhashLow * kPhashLow>& coefficients) {
  auto sorted = coefficients;
  std::sort(sorted.begin(), sorted.end());
  const double median = 0.5 * (sorted[31] + sorted[32]);
  uint64_t bits = 0;
  for (int i = 0; i < kPhashLow * kPhashLow; ++i)
    if (coefficients[static_cast<size_t>(i)] > median) bits |= uint64_t{1} << (63 - i);
  return bits;
}

uint64_t phash64(const uint8_t* gray, int width, int height) {
  const auto small = resize_area_32(gray, width, height);
  return phash_bits(dct_low_8x8(small.data()));
}

uint64_t phash64_bgr(const Frame& bgr) {
  FOUNDRY_CHECK(bgr.width > 0 && bgr.height > 0, "phash64_bgr: empty frame {} ({}x{})", bgr.index, bgr.width,
                bgr.height);
  const size_t pixels = static_cast<size_t>(bgr.width) * bgr.height;
  FOUNDRY_CHECK(bgr.channels == 1 || bgr.channels == 3,
                "phash64_bgr: frame {} has {} channels; expected 3 (BGR24) or 1 (GRAY8)", bgr.index, bgr.channels);
  FOUNDRY_CHECK(bgr.data.size() == pixels * bgr.channels, "phash64_bgr: frame {} holds {} bytes, not {}x{}x{}",
                bgr.index, bgr.data.size(), bgr.width, bgr.height, bgr.channels);
  if (bgr.channels == 1) return phash64(bgr.data.data(), bgr.width, bgr.height);
  std::vector<uint8_t> gray(pixels);
  const uint8_t* p = bgr.data.data();
  for (size_t i = 0; i < pixels; ++i, p += 3) gray[i] = luma_pil(p[0], p[1], p[2]);
  return phash64(gray.data(), bgr.width, bgr.height);
}

int hamming(uint64_t a, uint64_t b) { return std::popcount(a ^ b); }

ClipFingerprinter::ClipFingerprinter(int64_t expected_frames, int samples) {
  FOUNDRY_CHECK(samples >= 1, "ClipFingerprinter: samples must be >= 1, got {}", samples);
  FOUNDRY_CHECK(expected_frames >= 0, "ClipFingerprinter: expected_frames must be >= 0, got {}", expected_frames);
  const int64_t n = expected_frames;
  if (n <= samples) {
    for (int64_t i = 0; i < n; ++i) positions_.push_back(i);
  } else if (samples == 1) {
    positions_.push_back(n / 2);  // round((n - 1) / 2), halves up
  } else {
    const int64_t s1 = samples - 1;
    // round(i (n - 1) / (samples - 1)), halves up; strictly increasing since the step is > 1.
    for (int64_t i = 0; i < samples; ++i) positions_.push_back((2 * i * (n - 1) + s1) / (2 * s1));
  }
  fingerprint_.hashes.reserve(positions_.size());
}

void ClipFingerprinter::add(const Frame& bgr) {
  if (next_ < positions_.size() && seen_ == positions_[next_]) {
    fingerprint_.hashes.push_back(phash64_bgr(bgr));
    ++next_;
  }
  ++seen_;
}

double fingerprint_distance(const ClipFingerprint& a, const ClipFingerprint& b) {
  const ClipFingerprint& shorter = a.hashes.size() <= b.hashes.size() ? a : b;
  const ClipFingerprint& longer = a.hashes.size() <= b.hashes.size() ? b : a;
  const int64_t m = static_cast<int64_t>(shorter.hashes.size()), n = static_cast<int64_t>(longer.hashes.size());
  if (m == 0) return 64.0;
  int64_t bits = 0;
  for (int64_t j = 0; j < m; ++j) {
    // The same relative position: round(j (n - 1) / (m - 1)), halves up; m = 1: the middle.
    const int64_t k = m == 1 ? n / 2 : (2 * j * (n - 1) + (m - 1)) / (2 * (m - 1));
    bits += hamming(shorter.hashes[static_cast<size_t>(j)], longer.hashes[static_cast<size_t>(k)]);
  }
  return static_cast<double>(bits) / static_cast<double>(m);
}

}  // namespace foundry::video
