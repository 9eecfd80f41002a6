// CPU fused cross-entropy (ops/loss.h). Per row n, over the vocabulary in chunks of kChunk columns:
//   sweep 1 (online log-sum-exp, Milakov & Gimelshein 2018): chunk max c, running max m and
//     s = s exp(m_old - m) + sum_chunk exp(x - m);  lse = m + log s
//   sweep 2: dlogits[n, v] = k exp(x[v] - m) with k = grad_scale / D (1 + 2 z_loss_coeff lse) / s,
//     then dlogits[n, target] -= grad_scale / D.
// Sweep 2 reads x[v] before it writes dlogits[n, v], at the same index, so dlogits may alias logits.
// Per-row ce and z are kept in f64 and summed in row order after the parallel loop, so the loss
// does not depend on the thread count.
#include "foundry/backend/cpu/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace foundry::cpu {

namespace {

// 4096 f32 columns = 16 KiB: a chunk stays in L1 between its max and its exp-sum loops.
constexpr int64_t kChunk = 4096;
// exp terms (each <= 1) are summed in f32 over blocks of 256 (16 per SIMD lane), then in f64:
// the f32 error stays near 1e-7 relative however large V is, and the loop stays vectorised (an f64
// accumulator inside the exp loop makes it several times slower).
constexpr int64_t kSumBlock = 256;

struct RowLse {
  float max;   // m
  double sum;  // s = sum_v exp(x[v] - m)
};

// x (V): online log-sum-exp over chunks.
RowLse row_lse(const float* x, int64_t V) {
  float m = -std::numeric_limits<float>::infinity();
  double s = 0.0;
  for (int64_t c0 = 0; c0 < V; c0 += kChunk) {
    const float* xc = x + c0;
    const int64_t len = std::min(kChunk, V - c0);
    float cmax = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : cmax)
    for (int64_t i = 0; i < len; ++i) cmax = xc[i] > cmax ? xc[i] : cmax;
    const float m_new = std::max(m, cmax);
    if (m_new == -std::numeric_limits<float>::infinity()) continue;  // only -inf so far: s stays 0
    double cs = 0.0;
    for (int64_t b = 0; b < len; b += kSumBlock) {
      const int64_t end = std::min(len, b + kSumBlock);
      float bs = 0.f;
#pragma omp simd reduction(+ : bs)
      for (int64_t i = b; i < end; ++i) bs += exp_f32(xc[i] - m_new);
      cs += bs;
    }
    const double rescale = s == 0.0 ? 0.0 : std::exp(static_cast<double>(m) - m_new);
    s = s * rescale + cs;
    m = m_new;
  }
  return {m, s};
}

}  // namespace

CrossEntropyResult cross_entropy_fused(const CrossEntropyArgs& a) {
  const int64_t N = a.logits.size(0), V = a.logits.size(1);
  const float* logits = a.logits.ptr<float>();  // (N, V)
  const int32_t* targets = a.targets.ptr<int32_t>();  // (N)
  float* dlogits = a.dlogits.defined() ? a.dlogits.ptr<float>() : nullptr;  // (N, V)
  float* losses = a.losses.defined() ? a.losses.ptr<float>() : nullptr;  // (N)

  // Targets are data: check them (and count D's default) before the parallel loop, which cannot throw.
  int64_t num_valid = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    if (t == a.ignore_index) continue;
    FOUNDRY_CHECK(t >= 0 && t < V,
                  "cross_entropy_fused: target {} at row {} is outside [0, {}) and is not "
                  "ignore_index ({})", t, n, V, a.ignore_index);
    ++num_valid;
  }
  const double D = a.token_count > 0 ? a.token_count : static_cast<double>(num_valid);
  const double inv_d = D > 0 ? 1.0 / D : 0.0;  // D == 0 only when every row is ignored
  const double coeff = a.z_loss_coeff;
  const float g_onehot = static_cast<float>(a.grad_scale * inv_d);

  std::vector<double> row_ce(static_cast<size_t>(N)), row_z(static_cast<size_t>(N));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = logits + n * V;
    float* dx = dlogits ? dlogits + n * V : nullptr;
    const int32_t t = targets[n];
    if (t == a.ignore_index) {
      row_ce[n] = row_z[n] = 0.0;
      if (losses) losses[n] = 0.f;
      if (dx) std::fill(dx, dx + V, 0.f);
      continue;
    }
    const RowLse r = row_lse(x, V);
    const double lse = r.max + std::log(r.sum);
    const double ce = lse - x[t];  // read before sweep 2 may overwrite x
    row_ce[n] = ce;
    row_z[n] = coeff * lse * lse;
    if (losses) losses[n] = static_cast<float>(ce);
    if (!dx) continue;
    const float m = r.max;
    const float k = static_cast<float>(a.grad_scale * inv_d * (1.0 + 2.0 * coeff * lse) / r.sum);
#pragma omp simd
    for (int64_t v = 0; v < V; ++v) dx[v] = exp_f32(x[v] - m) * k;
    dx[t] -= g_onehot;
  }

  CrossEntropyResult res;
  res.num_valid = num_valid;
  double ce_sum = 0.0, z_sum = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    ce_sum += row_ce[n];
    z_sum += row_z[n];
  }
  res.loss = D > 0 ? ce_sum / D : 0.0;
  res.z_loss = D > 0 ? z_sum / D : 0.0;
  return res;
}

}  // namespace foundry::cpu
