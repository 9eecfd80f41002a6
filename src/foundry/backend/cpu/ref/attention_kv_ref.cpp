// Naive reference attention with a key/value cache, per query row in f64:
//   cache[b, past_len + i] = new[b, i]                       (when k_new / v_new are given)
//   s_j = scale q[b, i, h] . K[b, j, h / G]  for j <= past_len + i
//   p = softmax(s),  out[b, i, h] = sum_j p_j V[b, j, h / G]
#include "foundry/backend/cpu/ref/attention_kv_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace foundry::ref {

void attention_kv_forward(const AttentionKvArgs& a) {
  const int64_t B = a.q.size(0), Tq = a.q.size(1), NH = a.q.size(2), HD = a.q.size(3);
  const int64_t Smax = a.k_cache.size(1), NKV = a.k_cache.size(2), G = NH / NKV;
  const double scale = a.scale != 0.f ? a.scale : 1.0 / std::sqrt(static_cast<double>(HD));
  float* kc = a.k_cache.ptr<float>();
  float* vc = a.v_cache.ptr<float>();
  if (a.k_new.defined())
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Tq; ++i)
        for (int64_t e = 0; e < NKV * HD; ++e) {
          const int64_t dst = (b * Smax + a.past_len + i) * NKV * HD + e;
          const int64_t src = (b * Tq + i) * NKV * HD + e;
          kc[dst] = a.k_new.ptr<float>()[src];
          vc[dst] = a.v_new.ptr<float>()[src];
        }
  const float* q = a.q.ptr<float>();
  float* out = a.out.ptr<float>();
  std::vector<double> p;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t n = a.past_len + i + 1, kvh = h / G;
        const float* qr = q + ((b * Tq + i) * NH + h) * HD;
        p.assign(static_cast<size_t>(n), 0.0);
        double mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const float* kj = kc + ((b * Smax + j) * NKV + kvh) * HD;
          double s = 0;
          for (int64_t c = 0; c < HD; ++c) s += static_cast<double>(qr[c]) * kj[c];
          p[static_cast<size_t>(j)] = scale * s;
          mx = std::max(mx, scale * s);
        }
        double sum = 0;
        for (double& x : p) {
          x = std::exp(x - mx);
          sum += x;
        }
        for (int64_t c = 0; c < HD; ++c) {
          double o = 0;
          for (int64_t j = 0; j < n; ++j)
            o += p[static_cast<size_t>(j)] * vc[((b * Smax + j) * NKV + kvh) * HD + c];
          out[((b * Tq + i) * NH + h) * HD + c] = static_cast<float>(o / sum);
        }
      }
}

}  // namespace foundry::ref
