// CPU fused cross-entropy (contract and formulas in ops/loss.h) and the vectorisable f32 exp it
// uses. Arguments reach cross_entropy_fused already validated by ops/loss.cpp.
#pragma once

#include <cstdint>
#include <cstring>

#include "foundry/ops/loss.h"

namespace foundry::cpu {

// exp(x) in f32 without branches, so `#pragma omp simd` loops vectorise it (Cephes expf):
//   x = n ln2 + r, |r| <= ln2 / 2   (n = round(x / ln2); ln2 split in two for an exact r)
//   exp(r) ~ 1 + r + r^2 P(r),  P of degree 5 (Cephes' minimax coefficients)
//   exp(x) = exp(r) * 2^(n - n/2) * 2^(n/2)   (two factors: n reaches -150 for subnormal results)
// Max relative error about 1.2e-7 (tested against std::exp); x < -104 gives 0, x > 88.73 gives
// +inf, NaN stays NaN.
inline float exp_f32(float x) {
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

// logits (N, V) -> loss, z_loss, num_valid; dlogits (N, V) written (=) when defined (may alias
// logits); losses (N) written (=) when defined. Throws on a target outside [0, V) that is not
// ignore_index, naming the row and the value.
CrossEntropyResult cross_entropy_fused(const CrossEntropyArgs& args);

}  // namespace foundry::cpu
