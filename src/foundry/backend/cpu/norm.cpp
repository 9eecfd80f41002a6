// CPU RMSNorm (Zhang & Sennrich 2019) and LayerNorm (Ba et al. 2016), rows of x (N, H):
//   xhat = x * rstd (RMSNorm) or (x - mean) * rstd (LayerNorm);  y = xhat * w (+ b)
// Backward with g = dy * w (the gradient with respect to xhat):
//   RMSNorm:   dx = rstd * (g - xhat * mean(g * xhat))
//   LayerNorm: dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
//   dw += sum_rows dy * xhat,  db += sum_rows dy
// The same formulas as Megatron / Apex fused layer norm (apex/csrc/layer_norm_cuda_kernel.cu).
#include "foundry/backend/cpu/norm.h"

#include <omp.h>

#include <cmath>
#include <vector>

namespace foundry::cpu {

namespace {

constexpr int64_t kParallelMin = int64_t{1} << 14;  // elements; below this threads cost more

// Rows [begin, end) of N for thread t of nt: a fixed partition, so that each thread's partial
// dweight/dbias sums the same rows in the same order on every run.
inline int64_t row_split(int64_t N, int t, int nt) { return N * t / nt; }

// Forward for one kind. LayerNorm subtracts the mean and may add a bias.
template <bool kLayer>
void norm_forward(const NormArgs& a) {
  const int64_t N = a.x.size(0), H = a.x.size(1);
  const float* x = a.x.ptr<float>();
  const float* w = a.weight.ptr<float>();
  const float* b = kLayer && a.bias.defined() ? a.bias.ptr<float>() : nullptr;
  float* y = a.y.ptr<float>();
  float* mean_out = kLayer ? a.mean.ptr<float>() : nullptr;
  float* rstd_out = a.rstd.ptr<float>();
  const float inv_h = 1.f / static_cast<float>(H);
  const float eps = a.eps;
#pragma omp parallel for schedule(static) if (N * H >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * H;
    float* yr = y + n * H;
    float mean = 0.f;
    if constexpr (kLayer) {
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < H; ++j) sum += xr[j];
      mean = sum * inv_h;
      mean_out[n] = mean;
    }
    float ss = 0.f;  // two-pass: sum of squares about the mean (exactly 0 for RMSNorm)
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < H; ++j) ss += (xr[j] - mean) * (xr[j] - mean);
    const float rstd = 1.f / std::sqrt(ss * inv_h + eps);
    rstd_out[n] = rstd;
    if (b != nullptr) {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) yr[j] = (xr[j] - mean) * rstd * w[j] + b[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) yr[j] = (xr[j] - mean) * rstd * w[j];
    }
  }
}

// Backward for one kind: dx written (=) or added (+=, accumulate_dx); dweight += and, for
// LayerNorm, dbias += (when given).
template <bool kLayer>
void norm_backward(const NormArgs& a) {
  const int64_t N = a.x.size(0), H = a.x.size(1);
  const float* x = a.x.ptr<float>();
  const float* w = a.weight.ptr<float>();
  const float* mean_in = kLayer ? a.mean.ptr<float>() : nullptr;
  const float* rstd_in = a.rstd.ptr<float>();
  const float* dy = a.dy.ptr<float>();
  float* dx = a.dx.ptr<float>();
  float* dw = a.dweight.ptr<float>();
  float* db = kLayer && a.dbias.defined() ? a.dbias.ptr<float>() : nullptr;
  const bool accumulate = a.accumulate_dx;
  const float inv_h = 1.f / static_cast<float>(H);

  // Per-thread rows of H: partial dw [0, nt), partial db [nt, 2 nt), g = dy * w scratch
  // [2 nt, 3 nt). g is stored once so that the sums and dx see the same rounded value (the
  // compiler may fuse dy * w - mean(g) into an fma, which breaks the exact cancellation of a
  // constant row).
  const bool parallel = N * H >= kParallelMin;
  const int max_threads = parallel ? omp_get_max_threads() : 1;
  std::vector<float> partial(static_cast<size_t>(3 * max_threads * H), 0.f);
  int used_threads = 1;

#pragma omp parallel if (parallel)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    if (t == 0) used_threads = nt;
    float* pdw = partial.data() + t * H;
    float* pdb = partial.data() + (max_threads + t) * H;
    float* g = partial.data() + (2 * max_threads + t) * H;
    for (int64_t n = row_split(N, t, nt); n < row_split(N, t + 1, nt); ++n) {
      const float* xr = x + n * H;
      const float* dyr = dy + n * H;
      float* dxr = dx + n * H;
      const float mean = kLayer ? mean_in[n] : 0.f;
      const float rstd = rstd_in[n];
      float sum_g = 0.f, sum_gx = 0.f;  // sum(g), sum(g * xhat)
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t j = 0; j < H; ++j) {
        const float xhat = (xr[j] - mean) * rstd;
        g[j] = dyr[j] * w[j];
        sum_g += g[j];
        sum_gx += g[j] * xhat;
        pdw[j] += dyr[j] * xhat;
      }
      const float c_g = kLayer ? sum_g * inv_h : 0.f;
      const float c_gx = sum_gx * inv_h;
      if (accumulate) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const float xhat = (xr[j] - mean) * rstd;
          dxr[j] += rstd * (g[j] - c_g - xhat * c_gx);
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const float xhat = (xr[j] - mean) * rstd;
          dxr[j] = rstd * (g[j] - c_g - xhat * c_gx);
        }
      }
      if (db != nullptr) {
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) pdb[j] += dyr[j];
      }
    }
  }

  // Reduce the partials in thread order (a fixed order: deterministic for a fixed thread count).
  float* sum_w = partial.data();
  float* sum_b = partial.data() + max_threads * H;
  for (int t = 1; t < used_threads; ++t) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      sum_w[j] += sum_w[t * H + j];
      sum_b[j] += sum_b[t * H + j];
    }
  }
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) dw[j] += sum_w[j];
  if (db != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) db[j] += sum_b[j];
  }
}

}  // namespace

void rmsnorm_forward(const NormArgs& args) { norm_forward<false>(args); }
void rmsnorm_backward(const NormArgs& args) { norm_backward<false>(args); }
void layernorm_forward(const NormArgs& args) { norm_forward<true>(args); }
void layernorm_backward(const NormArgs& args) { norm_backward<true>(args); }

}  // namespace foundry::cpu
