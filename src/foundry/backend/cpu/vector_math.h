// Branch-free f32 exp / sigmoid / Phi for `#pragma omp simd` loops. glibc's vector math
// (libmvec) is only used under -ffast-math, so without these every activation would make a
// scalar libm call per element and run several times slower than memory.
//   exp:   Cephes expf (below): about 1.2e-7 relative error;
//          2^n is applied in two halves so results underflow to denormals/0 and overflow to
//          Inf correctly; NaN propagates.
//   Phi:   standard normal CDF via erfc(z) = t exp(-z^2 - 1.26551223 + t P(t)), t = 1/(1+z/2),
//          z >= 0 (Numerical Recipes 6.2, fractional error < 1.2e-7 everywhere), so the
//          negative tail keeps its relative accuracy (measured: relative error < 5e-7 down
//          to x = -13).
//   sincos: an f64 angle reduced in f64 by multiples of pi/2 (Cody-Waite, two-part pi/2), then
//          Cephes sinf/cosf polynomials on [-pi/4, pi/4] in f32 and the quadrant's swap/signs:
//          absolute error about 1e-7 for |angle| < 2^30 (RoPE angles reach 1e5-1e6 rad).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace foundry::cpu {

// exp(x) in f32 without branches, so `#pragma omp simd` loops vectorise it (Cephes expf):
//   x = n ln2 + r, |r| <= ln2 / 2   (n = round(x / ln2); ln2 split in two for an exact r)
//   exp(r) ~ 1 + r + r^2 P(r),  P of degree 5 (Cephes' minimax coefficients)
//   exp(x) = exp(r) * 2^(n - n/2) * 2^(n/2)   (two factors: n reaches -150 for subnormal results)
// Max relative error about 1.2e-7 (tested against std::exp); x < -104 gives 0, x > 88.73 gives
// +inf, NaN stays NaN.
[[gnu::always_inline]] inline float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // 9 significant bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  float xc = x > 88.73f ? 88.73f : x;   // comparisons keep NaN
  xc = xc < -104.f ? -104.f : xc;
  const float t = xc * kLog2e + kRound;
  const float n = t - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.f;
  uint32_t tb, kb;
  std::memcpy(&tb, &t, 4);
  std::memcpy(&kb, &kRound, 4);
  const int32_t ni = static_cast<int32_t>(tb - kb);  // n as an integer, in [-150, 128]
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const uint32_t b1 = static_cast<uint32_t>(n1 + 127) << 23, b2 = static_cast<uint32_t>(n2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, 4);
  std::memcpy(&s2, &b2, 4);
  return e * s1 * s2;
}

[[gnu::always_inline]] inline float sigmoid_f32(float x) { return 1.f / (1.f + exp_f32(-x)); }

// Phi(x) = 0.5 erfc(-x / sqrt(2)): the gelu_erf gate.
[[gnu::always_inline]] inline float normal_cdf_f32(float x_in) {
  float x = x_in < -20.f ? -20.f : x_in;  // Phi(-20) = 3e-89 underflows; keeps x*x finite
  x = x > 20.f ? 20.f : x;
  const float z = x < 0.f ? x * -0.70710678118654752f : x * 0.70710678118654752f;  // |x|/sqrt2
  const float t = 1.f / (1.f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  // exp(p - z^2) with the rounding errors of z^2 and of the subtraction folded back in
  // (fma remainder + TwoSum): z^2 reaches ~80 in the tail, where one ulp is 4e-6 relative.
  const float z2 = 0.5f * (x * x);  // z^2 = x^2 / 2 from x itself: z carries a rounding error
  const float z2_err = 0.5f * std::fma(x, x, -(x * x));
  const float a = p - z2;
  const float bb = a - p;
  const float a_err = (p - (a - bb)) + (-z2 - bb);
  const float half_erfc = 0.5f * t * exp_f32(a) * (1.f + (a_err - z2_err));  // Phi(-|x|)
  return x_in < 0.f ? half_erfc : 1.f - half_erfc;
}

// s = sin(angle), c = cos(angle) for |angle| < 2^30.
[[gnu::always_inline]] inline void sincos_f32(double angle, float& s, float& c) {
  const double q = (angle * 0.63661977236758134 + 6755399441055744.0) - 6755399441055744.0;
  const double r = (angle - q * 1.5707963267341256) - q * 6.077100506506192e-11;  // angle - q pi/2
  const float y = static_cast<float>(r), z = y * y;
  const float sy = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * y + y;
  const float cy =
      ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
      0.5f * z + 1.f;
  // Quadrant k = q mod 4: (sin, cos) = (sy, cy), (cy, -sy), (-sy, -cy), (-cy, sy).
  const int32_t k = static_cast<int32_t>(q);
  const bool swap = (k & 1) != 0;
  const float s_abs = swap ? cy : sy, c_abs = swap ? sy : cy;
  s = (k & 2) != 0 ? -s_abs : s_abs;
  c = ((k + 1) & 2) != 0 ? -c_abs : c_abs;
}

}  // namespace foundry::cpu
