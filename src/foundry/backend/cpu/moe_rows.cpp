#include "foundry/backend/cpu/moe_rows.h"

#include <cstring>

#include "foundry/backend/cpu/vector_math.h"

namespace foundry::cpu {

void row_scale_forward(const RowScaleArgs& a) {
  const int64_t N = a.x.size(0), F = a.x.size(1);
  const float* x = a.x.ptr<float>();
  const float* s = a.s.ptr<float>();
  float* y = a.y.ptr<float>();
#pragma omp parallel for schedule(static) if (N * F > 32768)
  for (int64_t r = 0; r < N; ++r) {
    const float sr = s[r];
#pragma omp simd
    for (int64_t j = 0; j < F; ++j) y[r * F + j] = x[r * F + j] * sr;
  }
}

void row_scale_backward(const RowScaleArgs& a) {
  const int64_t N = a.x.size(0), F = a.x.size(1);
  const float* x = a.x.ptr<float>();
  const float* s = a.s.ptr<float>();
  const float* dy = a.dy.ptr<float>();
  float* dx = a.dx.ptr<float>();
  float* ds = a.ds.ptr<float>();
#pragma omp parallel for schedule(static) if (N * F > 32768)
  for (int64_t r = 0; r < N; ++r) {
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < F; ++j) acc += dy[r * F + j] * x[r * F + j];
    ds[r] = acc;  // before dx: dx may alias dy
    const float sr = s[r];
#pragma omp simd
    for (int64_t j = 0; j < F; ++j) dx[r * F + j] = dy[r * F + j] * sr;
  }
}

// y = s * silu(g) * u, one pass over h (the activation a = silu(g) * u is not stored).
void weighted_swiglu_forward(const WeightedSwigluArgs& a) {
  const int64_t N = a.y.size(0), F = a.y.size(1);
  const float* h = a.h.ptr<float>();
  const float* s = a.s.ptr<float>();
  float* y = a.y.ptr<float>();
#pragma omp parallel for schedule(static) if (N * F > 32768)
  for (int64_t r = 0; r < N; ++r) {
    const float* g = h + r * 2 * F;
    const float* u = g + F;
    float* yr = y + r * F;
    const float sr = s[r];
#pragma omp simd
    for (int64_t j = 0; j < F; ++j) yr[j] = g[j] * sigmoid_f32(g[j]) * u[j] * sr;
  }
}

// ds = rowsum(dy * a) with a = silu(g) * u recomputed; dh = [s dy u silu'(g) | s dy silu(g)].
void weighted_swiglu_backward(const WeightedSwigluArgs& a) {
  const int64_t N = a.dy.size(0), F = a.dy.size(1);
  const float* h = a.h.ptr<float>();
  const float* s = a.s.ptr<float>();
  const float* dy = a.dy.ptr<float>();
  float* dh = a.dh.ptr<float>();
  float* ds = a.ds.ptr<float>();
#pragma omp parallel for schedule(static) if (N * F > 32768)
  for (int64_t r = 0; r < N; ++r) {
    const float* g = h + r * 2 * F;
    const float* u = g + F;
    const float* dyr = dy + r * F;
    float* dg = dh + r * 2 * F;
    float* du = dg + F;
    const float sr = s[r];
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < F; ++j) {
      const float sig = sigmoid_f32(g[j]);
      const float silu = g[j] * sig;
      acc += dyr[j] * (silu * u[j]);
      const float da = dyr[j] * sr;
      dg[j] = da * u[j] * (sig * (1.f + g[j] * (1.f - sig)));
      du[j] = da * silu;
    }
    ds[r] = acc;
  }
}

void probs_scatter(const ProbsScatterArgs& a) {
  const int64_t E = a.dprobs.size(1);
  float* dp = a.dprobs.ptr<float>();
  std::memset(dp, 0, static_cast<size_t>(a.dprobs.nbytes()));
  const float* drow = a.drow.ptr<float>();
  const int32_t* tok = a.row_token.ptr<int32_t>();
  const int64_t* counts = a.tokens_per_expert.ptr<int64_t>();
  int64_t r = 0;
  for (int64_t e = 0; e < E; ++e)
    for (int64_t i = 0; i < counts[e]; ++i, ++r) dp[static_cast<int64_t>(tok[r]) * E + e] = drow[r];
}

}  // namespace foundry::cpu
