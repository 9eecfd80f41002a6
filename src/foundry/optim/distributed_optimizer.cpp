// DistributedAdamW (ZeRO-1): formulas and layout in distributed_optimizer.h.
#include "foundry/optim/distributed_optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "foundry/ops/optim.h"

namespace foundry {

namespace {

constexpr int64_t kShardAlign = 16;  // f32 elements: shards start on 64-byte boundaries
constexpr int64_t kBlock = 1 << 16;  // f32 elements per f64 partial sum of squares

float* f32(const TensorView& t) { return t.ptr<float>(); }

const char* kind_name(ParamTable::Kind kind) { return kind == ParamTable::Kind::dense ? "dense" : "expert"; }

}  // namespace

DistributedAdamW::DistributedAdamW(ParamTable& table, AdamW::Config cfg, Communicator& dp)
    : DistributedAdamW(table, cfg, dp, nullptr) {}

DistributedAdamW::DistributedAdamW(ParamTable& table, ParamTable::Kind kind, AdamW::Config cfg,
                                   Communicator& group)
    : DistributedAdamW(table, cfg, group, &kind) {}

DistributedAdamW::DistributedAdamW(ParamTable& table, AdamW::Config cfg, Communicator& group,
                                   const ParamTable::Kind* kind)
    : table_(table), cfg_(cfg), group_(group), rank_(group.rank()), dp_size_(group.size()) {
  FOUNDRY_CHECK(table.allocated(), "DistributedAdamW: the parameter table is not allocated");
  const TensorView all = table.grad_buffer();
  FOUNDRY_CHECK(table.value_buffer().numel() == all.numel(),
                "DistributedAdamW: value arena ({}) and gradient arena ({}) differ", table.value_buffer().numel(),
                all.numel());
  if (kind == nullptr) {
    FOUNDRY_CHECK(table.size() > 0, "DistributedAdamW: the parameter table is empty");
    begin_ = 0;
    n_ = all.numel();
  } else {
    const TensorView range = table.grad_buffer(*kind);
    begin_ = (static_cast<const char*>(range.data) - static_cast<const char*>(all.data)) / 4;
    n_ = range.numel();
    FOUNDRY_CHECK(begin_ % kShardAlign == 0 && table.value_buffer(*kind).numel() == n_,
                  "DistributedAdamW: the {} range [{}, {}) is not 64-byte aligned or differs between values and "
                  "gradients", kind_name(*kind), begin_, begin_ + n_);
  }
  const int64_t per_rank = (n_ + dp_size_ - 1) / dp_size_;
  shard_ = (per_rank + kShardAlign - 1) / kShardAlign * kShardAlign;
  const int64_t s0 = shard_begin(), s1 = s0 + shard_;
  for (int i = 0; i < table.size(); ++i) {
    const ParamSpec& s = table.spec(i);
    if (kind != nullptr && s.expert_local != (*kind == ParamTable::Kind::expert)) {
      offset_.push_back(-1);
      continue;
    }
    FOUNDRY_CHECK(s.dtype == DType::f32, "DistributedAdamW: parameter '{}' has dtype {}, expected f32", s.name,
                  dtype_name(s.dtype));
    const Param& p = table.param(i);
    const int64_t off = (static_cast<const char*>(p.grad.data()) - static_cast<const char*>(all.data)) / 4 - begin_;
    FOUNDRY_CHECK(off >= 0 && off + p.grad.numel() <= n_,
                  "DistributedAdamW: parameter '{}' at [{}, {}) lies outside the optimizer's range of {} elements",
                  s.name, off, off + p.grad.numel(), n_);
    offset_.push_back(off);
    const int64_t b = std::max(off, s0), e = std::min(off + p.grad.numel(), s1);
    if (b < e) segments_.push_back({.param = i, .begin = b, .end = e, .param_begin = b - off});
  }
  // Expert parameters follow the dense ones in the arena, not in registration order.
  std::sort(segments_.begin(), segments_.end(), [](const Segment& a, const Segment& b) { return a.begin < b.begin; });
  master_ = Tensor::zeros({shard_});
  m_ = Tensor::zeros({shard_});
  v_ = Tensor::zeros({shard_});
  grad_shard_ = Tensor::zeros({shard_});
  if (n_ < dp_size_ * shard_) padded_ = Tensor::zeros({dp_size_ * shard_});
  load_master_from_params();
}

TensorView DistributedAdamW::grad_range() const { return table_.grad_buffer().slice(begin_, begin_ + n_); }
TensorView DistributedAdamW::value_range() const { return table_.value_buffer().slice(begin_, begin_ + n_); }

void DistributedAdamW::load_master_from_params() {
  // Padding (alignment gaps inside the range are zero; the tail beyond N) stays zero.
  if (shard_ == 0) return;
  master_.zero_();
  const int64_t s0 = shard_begin();
  const int64_t e = std::min(n_, s0 + shard_);
  if (s0 < e) std::memcpy(master_.ptr<float>(), f32(value_range()) + s0, static_cast<size_t>(e - s0) * 4);
}

void DistributedAdamW::reduce_scatter_gradients() {
  if (n_ == 0) return;  // the same on every rank of the group
  const TensorView grads = grad_range();
  if (padded_.defined()) {
    // The tail [N, DP S) of padded_ is zero and never written, except by step()'s all_gather,
    // which writes the (zero) master padding there.
    std::memcpy(padded_.ptr<float>(), f32(grads), static_cast<size_t>(n_) * 4);
    group_.reduce_scatter(padded_.view(), grad_shard_.view());
  } else {
    group_.reduce_scatter(grads, grad_shard_.view());
  }
}

double DistributedAdamW::shard_sum_squares(const std::function<bool(int)>& counted) const {
  // Fixed blocks of kBlock shard elements, each summed in element order, added in block order
  // (independent of the thread count). Gaps and padding are zero, so skipping them, and skipping
  // nothing else, gives the bits of summing the whole shard.
  std::vector<char> use(segments_.size());
  for (size_t k = 0; k < segments_.size(); ++k) use[k] = counted(segments_[k].param) ? 1 : 0;
  const int64_t s0 = shard_begin();
  const float* g = grad_shard_.defined() ? grad_shard_.ptr<float>() : nullptr;
  const int64_t blocks = (shard_ + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * kBlock, hi = std::min(shard_, (b + 1) * kBlock);  // shard offsets
    auto it = std::partition_point(segments_.begin(), segments_.end(),
                                   [&](const Segment& s) { return s.end - s0 <= lo; });
    double sum = 0.0;
    for (; it != segments_.end() && it->begin - s0 < hi; ++it) {
      if (!use[static_cast<size_t>(it - segments_.begin())]) continue;
      for (int64_t i = std::max(lo, it->begin - s0); i < std::min(hi, it->end - s0); ++i)
        sum += double(g[i]) * double(g[i]);
    }
    partial[static_cast<size_t>(b)] = sum;
  }
  double s = 0.0;
  for (double p : partial) s += p;
  return s;
}

GradClip DistributedAdamW::reduce_gradients(double max_norm) {
  GradClip c;
  if (n_ == 0) return c;  // norm 0, coefficient 1; no collective on any rank of the group
  reduce_scatter_gradients();
  c.norm = std::sqrt(group_.all_reduce_sum(shard_sum_squares([](int) { return true; })));
  c.coefficient = max_norm > 0 ? clip_coefficient(c.norm, max_norm) : 1.f;
  return c;
}

void DistributedAdamW::step(float lr, float grad_scale) {
  ++step_;
  if (n_ == 0) return;
  const int64_t s0 = shard_begin();
  for (const Segment& s : segments_) {
    const int64_t b = s.begin - s0, e = s.end - s0;  // shard offsets
    adamw_step({.param = master_.view().slice(b, e), .grad = grad_shard_.view().slice(b, e),
                .exp_avg = m_.view().slice(b, e), .exp_avg_sq = v_.view().slice(b, e), .lr = lr,
                .beta1 = cfg_.beta1, .beta2 = cfg_.beta2, .eps = cfg_.eps,
                .weight_decay = table_.spec(s.param).weight_decay ? cfg_.weight_decay : 0.f,
                .step = step_, .grad_scale = grad_scale});
  }
  const TensorView values = value_range();
  if (padded_.defined()) {
    group_.all_gather(master_.view(), padded_.view());
    std::memcpy(f32(values), padded_.ptr<float>(), static_cast<size_t>(n_) * 4);
  } else {
    group_.all_gather(master_.view(), values);
  }
}

void DistributedAdamW::gather_state(std::vector<Tensor>& exp_avg, std::vector<Tensor>& exp_avg_sq) const {
  const size_t P = static_cast<size_t>(table_.size());
  exp_avg.resize(P);
  exp_avg_sq.resize(P);
  if (n_ == 0) return;
  Tensor full = Tensor::empty({dp_size_ * shard_});  // (DP S) f32
  for (int which = 0; which < 2; ++which) {
    group_.all_gather((which == 0 ? m_ : v_).view(), full.view());
    std::vector<Tensor>& out = which == 0 ? exp_avg : exp_avg_sq;
    for (size_t i = 0; i < P; ++i) {
      if (offset_[i] < 0) continue;  // another optimizer's parameter: untouched
      const Shape& shape = table_.spec(static_cast<int>(i)).shape;
      if (!out[i].defined() || out[i].shape() != shape || out[i].dtype() != DType::f32)
        out[i] = Tensor::empty(shape);
      std::memcpy(out[i].ptr<float>(), full.ptr<float>() + offset_[i], static_cast<size_t>(shape.numel()) * 4);
    }
  }
}

void DistributedAdamW::gather_state(AdamW& full) const {
  FOUNDRY_CHECK(full.size() == table_.size(), "DistributedAdamW::gather_state: AdamW has {} parameters, the table {}",
                full.size(), table_.size());
  std::vector<Tensor> m, v;
  gather_state(m, v);
  for (int i = 0; i < table_.size(); ++i) {
    if (!owns(i)) continue;
    full.exp_avg(i).copy_from(m[static_cast<size_t>(i)].view());
    full.exp_avg_sq(i).copy_from(v[static_cast<size_t>(i)].view());
  }
  full.set_steps(step_);
}

void DistributedAdamW::scatter_state(const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq) {
  FOUNDRY_CHECK(exp_avg.size() == static_cast<size_t>(table_.size()) &&
                    exp_avg_sq.size() == static_cast<size_t>(table_.size()),
                "DistributedAdamW::scatter_state: {} exp_avg and {} exp_avg_sq tensors for {} parameters",
                exp_avg.size(), exp_avg_sq.size(), table_.size());
  for (int i = 0; i < table_.size(); ++i) {
    if (!owns(i)) continue;  // another optimizer's parameter: not read
    const ParamSpec& s = table_.spec(i);
    for (const Tensor* t : {&exp_avg[static_cast<size_t>(i)], &exp_avg_sq[static_cast<size_t>(i)]})
      FOUNDRY_CHECK(t->defined() && t->dtype() == DType::f32 && t->numel() == s.shape.numel(),
                    "DistributedAdamW::scatter_state: state of '{}' is {}, expected f32{}", s.name,
                    t->defined() ? t->str() : std::string("undefined"), s.shape.str());
  }
  if (shard_ == 0) return;
  m_.zero_();
  v_.zero_();
  const int64_t s0 = shard_begin();
  for (const Segment& s : segments_) {
    const size_t i = static_cast<size_t>(s.param), bytes = static_cast<size_t>(s.end - s.begin) * 4;
    std::memcpy(m_.ptr<float>() + (s.begin - s0), exp_avg[i].ptr<float>() + s.param_begin, bytes);
    std::memcpy(v_.ptr<float>() + (s.begin - s0), exp_avg_sq[i].ptr<float>() + s.param_begin, bytes);
  }
  load_master_from_params();
}

void DistributedAdamW::scatter_state(const AdamW& full) {
  FOUNDRY_CHECK(full.size() == table_.size(), "DistributedAdamW::scatter_state: AdamW has {} parameters, the table {}",
                full.size(), table_.size());
  std::vector<Tensor> m, v;
  for (int i = 0; i < full.size(); ++i) {
    m.push_back(full.exp_avg(i));
    v.push_back(full.exp_avg_sq(i));
  }
  scatter_state(m, v);
  step_ = full.steps();
}

}  // namespace foundry
