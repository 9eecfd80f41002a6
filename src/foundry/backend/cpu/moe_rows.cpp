#include "foundry/backend/cpu/moe_rows.h"

#include <cstring>

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
