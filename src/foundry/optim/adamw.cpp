#include "foundry/optim/adamw.h"

#include "foundry/ops/optim.h"

namespace foundry {

AdamW::AdamW(ParamTable& table, Config cfg) : table_(table), cfg_(cfg) {
  FOUNDRY_CHECK(table.allocated(), "AdamW: the parameter table is not allocated");
  int64_t bytes = Arena::kAlign;
  for (int i = 0; i < table.size(); ++i)
    bytes += Arena::aligned(dtype_storage_bytes(DType::f32, table.spec(i).shape.numel()));
  m_arena_ = Arena(bytes);
  v_arena_ = Arena(bytes);
  for (int i = 0; i < table.size(); ++i) {
    m_.push_back(m_arena_.take(table.spec(i).shape, DType::f32));
    v_.push_back(v_arena_.take(table.spec(i).shape, DType::f32));
  }
}

void AdamW::step(float lr, float grad_scale) {
  ++step_;
  for (int i = 0; i < table_.size(); ++i) {
    const Param& p = table_.param(i);
    const int64_t n = p.value.numel();
    adamw_step({.param = p.value.reshape({n}), .grad = p.grad.reshape({n}),
                .exp_avg = m_[static_cast<size_t>(i)].reshape({n}),
                .exp_avg_sq = v_[static_cast<size_t>(i)].reshape({n}), .lr = lr,
                .beta1 = cfg_.beta1, .beta2 = cfg_.beta2, .eps = cfg_.eps,
                .weight_decay = table_.spec(i).weight_decay ? cfg_.weight_decay : 0.f,
                .step = step_, .grad_scale = grad_scale});
  }
}

GradClip clip_grad_norm(const ParamTable& table, double max_norm) {
  const auto grads = table.grads();
  GradClip c;
  c.norm = global_grad_norm(grads);
  c.coefficient = max_norm > 0 ? clip_coefficient(c.norm, max_norm) : 1.f;
  return c;
}

}  // namespace foundry
