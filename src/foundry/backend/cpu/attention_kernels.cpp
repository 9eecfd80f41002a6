// Micro-kernels for the blocked CPU attention; see attention_kernels.h for the formulas.
#include "foundry/backend/cpu/attention_kernels.h"

#include <algorithm>
#include <cmath>

namespace foundry::cpu::attn {

float exp2_approx(float x) {
  x = std::min(std::max(x, -200.f), 128.f);  // std::max(-inf, -200) = -200
  const float n = std::nearbyint(x);
  const float f = x - n;
  // std::fma: the same roundings as the vector version's FMAs.
  float p = 1.535336188319500e-4f;
  p = std::fma(p, f, 1.339887440266574e-3f);
  p = std::fma(p, f, 9.618437357674640e-3f);
  p = std::fma(p, f, 5.550332471162809e-2f);
  p = std::fma(p, f, 2.402264791363012e-1f);
  p = std::fma(p, f, 6.931472028550421e-1f);
  p = std::fma(p, f, 1.f);
  return std::ldexp(p, static_cast<int>(n));
}

#if defined(__AVX512F__)
namespace {

constexpr int kMR = 6;  // rows of C per register tile (6 x 4 vectors = 24 accumulators)

// One register tile: rows [0, MR) of C, NV vectors of 16 columns, the last one masked.
// kRowA: A is read along its rows (a_cs == 1), otherwise along its columns (a_rs == 1).
template <int MR, int NV, bool kRowA>
inline void tile(int64_t K, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb,
                 float* c, int64_t ldc, bool accumulate, __mmask16 last) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[m][v] = !accumulate   ? _mm512_setzero_ps()
                  : v == NV - 1 ? _mm512_maskz_loadu_ps(last, c + m * ldc + 16 * v)
                                : _mm512_loadu_ps(c + m * ldc + 16 * v);
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, b + k * ldb + 16 * v)
                          : _mm512_loadu_ps(b + k * ldb + 16 * v);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 av = _mm512_set1_ps(kRowA ? a[m * a_rs + k] : a[k * a_cs + m]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(av, bv[v], acc[m][v]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if (v == NV - 1)
        _mm512_mask_storeu_ps(c + m * ldc + 16 * v, last, acc[m][v]);
      else
        _mm512_storeu_ps(c + m * ldc + 16 * v, acc[m][v]);
    }
}

using TileFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*,
                        int64_t, bool, __mmask16);

template <bool kRowA, int MR>
constexpr TileFn pick_nv(int nv) {
  switch (nv) {
    case 1:
      return &tile<MR, 1, kRowA>;
    case 2:
      return &tile<MR, 2, kRowA>;
    case 3:
      return &tile<MR, 3, kRowA>;
    default:
      return &tile<MR, 4, kRowA>;
  }
}

template <bool kRowA>
TileFn pick(int mr, int nv) {
  switch (mr) {
    case 1:
      return pick_nv<kRowA, 1>(nv);
    case 2:
      return pick_nv<kRowA, 2>(nv);
    case 3:
      return pick_nv<kRowA, 3>(nv);
    case 4:
      return pick_nv<kRowA, 4>(nv);
    case 5:
      return pick_nv<kRowA, 5>(nv);
    default:
      return pick_nv<kRowA, 6>(nv);
  }
}

template <bool kRowA>
void gemm_impl(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs,
               const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  // Columns outer: one 64-column panel of B (K x 64) stays in L1 while every row tile uses it.
  for (int64_t n0 = 0; n0 < N; n0 += 64) {
    const int64_t nn = std::min<int64_t>(64, N - n0);
    const int nv = static_cast<int>((nn + 15) / 16);
    const int tail = static_cast<int>(nn - 16 * (nv - 1));
    const __mmask16 last = static_cast<__mmask16>((1u << tail) - 1u);
    const TileFn full = pick<kRowA>(kMR, nv);
    int64_t m0 = 0;
    for (; m0 + kMR <= M; m0 += kMR)
      full(K, a + m0 * a_rs, a_rs, a_cs, b + n0, ldb, c + m0 * ldc + n0, ldc, accumulate, last);
    if (m0 < M)
      pick<kRowA>(static_cast<int>(M - m0), nv)(K, a + m0 * a_rs, a_rs, a_cs, b + n0, ldb,
                                                c + m0 * ldc + n0, ldc, accumulate, last);
  }
}

}  // namespace

void small_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs,
                const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  if (a_cs == 1)
    gemm_impl<true>(M, N, K, a, a_rs, a_cs, b, ldb, c, ldc, accumulate);
  else
    gemm_impl<false>(M, N, K, a, a_rs, a_cs, b, ldb, c, ldc, accumulate);
}

#else  // portable fallback (builds without AVX-512): plain loops the compiler can vectorise

void small_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs,
                const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  for (int64_t m = 0; m < M; ++m) {
    float* cm = c + m * ldc;
    if (!accumulate)
      for (int64_t n = 0; n < N; ++n) cm[n] = 0.f;
    for (int64_t k = 0; k < K; ++k) {
      const float av = a[m * a_rs + k * a_cs];
      const float* bk = b + k * ldb;
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) cm[n] += av * bk[n];
    }
  }
}

#endif

}  // namespace foundry::cpu::attn
