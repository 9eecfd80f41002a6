#include "foundry/backend/cpu/ref/loss_ref.h"

#include <cmath>
#include <vector>

namespace foundry::ref {

CrossEntropyResult cross_entropy(const CrossEntropyArgs& a) {
  const int64_t N = a.logits.size(0), V = a.logits.size(1);
  const float* x = a.logits.ptr<float>();
  const int32_t* targets = a.targets.ptr<int32_t>();
  CrossEntropyResult res;
  for (int64_t n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    if (t == a.ignore_index) continue;
    FOUNDRY_CHECK(t >= 0 && t < V, "ref::cross_entropy: target {} at row {} out of range", t, n);
    ++res.num_valid;
  }
  const double D = a.token_count > 0 ? a.token_count : static_cast<double>(res.num_valid);
  double ce_sum = 0, z_sum = 0;
  std::vector<double> softmax(static_cast<size_t>(V));
  for (int64_t n = 0; n < N; ++n) {
    const float* row = x + n * V;
    const int32_t t = targets[n];
    const bool valid = t != a.ignore_index;
    double ce = 0, lse = 0;
    if (valid) {
      double m = row[0];
      for (int64_t v = 1; v < V; ++v) m = std::max(m, static_cast<double>(row[v]));
      double s = 0;
      for (int64_t v = 0; v < V; ++v) s += std::exp(row[v] - m);
      for (int64_t v = 0; v < V; ++v) softmax[v] = std::exp(row[v] - m) / s;
      lse = m + std::log(s);
      ce = lse - row[t];
      ce_sum += ce;
      z_sum += a.z_loss_coeff * lse * lse;
    }
    if (a.losses.defined()) a.losses.ptr<float>()[n] = static_cast<float>(ce);
    if (a.dlogits.defined()) {
      float* dx = a.dlogits.ptr<float>() + n * V;  // written after the row was read: may alias
      for (int64_t v = 0; v < V; ++v) {
        const double onehot = v == t ? 1.0 : 0.0;
        dx[v] = valid ? static_cast<float>(a.grad_scale / D *
                                           ((1 + 2 * a.z_loss_coeff * lse) * softmax[v] - onehot))
                      : 0.f;
      }
    }
  }
  res.loss = D > 0 ? ce_sum / D : 0.0;
  res.z_loss = D > 0 ? z_sum / D : 0.0;
  return res;
}

}  // namespace foundry::ref
