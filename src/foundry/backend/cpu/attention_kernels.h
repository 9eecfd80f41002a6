// Micro-kernels for the blocked CPU attention (attention.cpp): a register-tiled small GEMM and
// a vectorised exp2. Both run single-threaded inside the caller's OpenMP region.
//
// small_gemm: C (M x N) = [C +] A B with A(m, k) = a[m * a_rs + k * a_cs] (so A may be read
// row-major or transposed: the element is broadcast either way) and B row-major (ldb). The
// register tile is kMR rows x up to 4 AVX-512 vectors (64 columns) of C: per k it loads the
// B vectors once and broadcasts kMR elements of A (the BLIS/GotoBLAS micro-kernel shape, without
// packing: the attention blocks are small and already L1/L2 resident, so packing would cost more
// than it saves; measured faster than dnnl_sgemm on 64 x 64 x 64 blocks, see attention_bench).
//
// exp2: Cephes exp2f (Moshier): 2^x = 2^n * (1 + f P(f)), n = round(x), f in [-1/2, 1/2],
// relative error ~2e-7 (about 2 ulp); exp2(-inf) and anything below -200 is exactly 0.
#pragma once

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace foundry::cpu::attn {

void small_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs,
                const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate);

// Scalar exp2 with the same formula as the vector one (for tails and the tests).
float exp2_approx(float x);

#if defined(__AVX512F__)
inline __m512 exp2_ps(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-200.f));  // also maps -inf to -200 (then scalef gives 0)
  x = _mm512_min_ps(x, _mm512_set1_ps(128.f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}
#endif

}  // namespace foundry::cpu::attn
