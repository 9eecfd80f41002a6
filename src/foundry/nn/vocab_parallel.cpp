#include "foundry/nn/vocab_parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "foundry/nn/parallel_linear.h"
#include "foundry/ops/embedding.h"

namespace foundry {

// ---- VocabParallelEmbedding ----

VocabParallelEmbedding::VocabParallelEmbedding(Config c, Communicator& tp_group) : cfg(c), tp(&tp_group) {
  FOUNDRY_CHECK(c.vocab > 0 && c.vocab % tp_group.size() == 0, "VocabParallelEmbedding: vocab {} is not "
                "divisible by the tensor-parallel size {}", c.vocab, tp_group.size());
  const int64_t n = c.vocab / tp_group.size();
  start = tp_group.rank() * n;
  end = start + n;
}

void VocabParallelEmbedding::register_params(ParamTable& table, const std::string& name) {
  ParamSpec s{.name = name + ".weight", .shape = {cfg.vocab, cfg.hidden}, .init = cfg.init, .tp_split_axis = 0};
  shard_split(s, 0, tp->rank(), tp->size(), "tp");  // rows [start, end) of the full (V, H)
  table.add(weight, std::move(s));
}

Tensor VocabParallelEmbedding::forward(Context& ctx, const Tensor& ids, Saved& s) const {
  FOUNDRY_CHECK(ids.dtype() == DType::i32 && ids.device().is_cpu(), "VocabParallelEmbedding: ids {} "
                "must be i32 on the CPU", ids.str());
  const int64_t n = ids.numel();
  s.local_ids = Tensor::empty({n}, DType::i32);
  Tensor lookup = Tensor::empty({n}, DType::i32);  // owned row, or 0 (masked below)
  const int32_t* id = ids.ptr<int32_t>();
  int32_t* li = s.local_ids.ptr<int32_t>();
  for (int64_t t = 0; t < n; ++t) {
    FOUNDRY_CHECK(id[t] >= 0 && id[t] < cfg.vocab, "VocabParallelEmbedding: token id {} at {} is "
                  "outside [0, {})", id[t], t, cfg.vocab);
    li[t] = id[t] >= start && id[t] < end ? static_cast<int32_t>(id[t] - start) : -1;
    lookup.ptr<int32_t>()[t] = li[t] < 0 ? 0 : li[t];
  }
  Tensor out = Tensor::empty({n, cfg.hidden}, DType::f32, ids.device());  // (N, H)
  embedding_forward({.ids = lookup, .table = weight.value, .out = out});
  for (int64_t t = 0; t < n; ++t)
    if (li[t] < 0) out.slice(t, t + 1).zero_();
  if (cfg.sequence_parallel) return reduce_scatter_tokens(*tp, out);  // (N/P, H)
  tp->all_reduce(out);
  return out;
}

void VocabParallelEmbedding::backward(Context& ctx, const Tensor& dy, const Saved& s) {
  Tensor d = cfg.sequence_parallel ? all_gather_tokens(*tp, dy) : dy.clone();  // (N, H)
  const int64_t n = s.local_ids.numel();
  FOUNDRY_CHECK(d.ndim() == 2 && d.size(0) == n && d.size(1) == cfg.hidden, "VocabParallelEmbedding: "
                "backward dy {} does not match {} tokens of hidden {}", dy.shape().str(), n, cfg.hidden);
  Tensor lookup = Tensor::empty({n}, DType::i32);
  const int32_t* li = s.local_ids.ptr<int32_t>();
  for (int64_t t = 0; t < n; ++t) {
    lookup.ptr<int32_t>()[t] = li[t] < 0 ? 0 : li[t];
    if (li[t] < 0) d.slice(t, t + 1).zero_();  // another rank's row: adds nothing
  }
  embedding_backward({.ids = lookup, .table = weight.value, .dout = d, .dtable = weight.grad});
}

// ---- vocab_parallel_cross_entropy ----

CrossEntropyResult vocab_parallel_cross_entropy(Communicator& tp, const VocabParallelCrossEntropyArgs& a) {
  FOUNDRY_CHECK(a.logits.ndim() == 2 && a.logits.dtype == DType::f32 && a.logits.device.is_cpu(),
                "vocab_parallel_cross_entropy: logits {} must be (N, V/P) f32 on the CPU", a.logits.str());
  const int64_t n = a.logits.size(0), v = a.logits.size(1);
  FOUNDRY_CHECK(a.targets.dtype == DType::i32 && a.targets.numel() == n, "vocab_parallel_cross_entropy: "
                "targets {} must be ({}) i32", a.targets.str(), n);
  const bool grad = a.dlogits.defined();
  FOUNDRY_CHECK(!grad || (a.dlogits.numel() == n * v && a.dlogits.dtype == DType::f32),
                "vocab_parallel_cross_entropy: dlogits {} must match logits {}", a.dlogits.str(), a.logits.str());
  FOUNDRY_CHECK(!a.losses.defined() || (a.losses.numel() == n && a.losses.dtype == DType::f32),
                "vocab_parallel_cross_entropy: losses {} must be ({}) f32", a.losses.str(), n);
  const float* x = a.logits.ptr<float>();
  const int32_t* tgt = a.targets.ptr<int32_t>();

  Tensor m = Tensor::empty({n});  // (N) row max over the full vocabulary
  for (int64_t i = 0; i < n; ++i) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < v; ++j) mx = std::max(mx, x[i * v + j]);
    m.ptr<float>()[i] = mx;
  }
  tp.all_reduce(m, ReduceOp::max);

  Tensor sx = Tensor::zeros({2, n});  // [S_n; x_n] partial sums
  float* S = sx.ptr<float>();
  float* xt = S + n;
  for (int64_t i = 0; i < n; ++i) {
    const float mi = m.ptr<float>()[i];
    double s = 0.0;
    for (int64_t j = 0; j < v; ++j) s += std::exp(static_cast<double>(x[i * v + j] - mi));
    S[i] = static_cast<float>(s);
    const int64_t t = static_cast<int64_t>(tgt[i]) - a.vocab_start;
    if (tgt[i] != a.ignore_index && t >= 0 && t < v) xt[i] = x[i * v + t];
  }
  tp.all_reduce(sx);

  CrossEntropyResult r;
  std::vector<double> lse(static_cast<size_t>(n));
  double ce_sum = 0.0, z_sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    lse[i] = m.ptr<float>()[i] + std::log(static_cast<double>(S[i]));
    const bool valid = tgt[i] != a.ignore_index;
    const double ce = valid ? lse[i] - xt[i] : 0.0;
    if (a.losses.defined()) a.losses.ptr<float>()[i] = static_cast<float>(ce);
    if (!valid) continue;
    ++r.num_valid;
    ce_sum += ce;
    z_sum += a.z_loss_coeff * lse[i] * lse[i];
  }
  const double d = a.token_count > 0 ? a.token_count : static_cast<double>(r.num_valid);
  r.loss = d > 0 ? ce_sum / d : 0.0;
  r.z_loss = d > 0 ? z_sum / d : 0.0;
  if (!grad) return r;
  float* dx = a.dlogits.ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const bool valid = tgt[i] != a.ignore_index && d > 0;
    const double g = valid ? a.grad_scale / d : 0.0;
    const double zf = 1.0 + 2.0 * a.z_loss_coeff * lse[i];
    const int64_t t = static_cast<int64_t>(tgt[i]) - a.vocab_start;
    for (int64_t j = 0; j < v; ++j) {  // reads x[i, j] before writing it (dlogits may alias)
      const double p = std::exp(static_cast<double>(x[i * v + j]) - lse[i]);
      dx[i * v + j] = static_cast<float>(g * (zf * p - (j == t ? 1.0 : 0.0)));
    }
  }
  return r;
}

}  // namespace foundry
