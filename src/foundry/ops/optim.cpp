// Optimizer ops: argument checks and device dispatch (formulas in optim.h).
#include "foundry/ops/optim.h"

#include <algorithm>
#include <cmath>

#include "foundry/backend/cpu/optim.h"

namespace foundry {

namespace {

void check_cpu(const char* op, const TensorView& t) {
  FOUNDRY_CHECK(t.device.is_cpu(), "{}: device {} is not supported in this build", op, t.device.str());
}

}  // namespace

void adamw_step(const AdamWArgs& a) {
  constexpr const char* op = "adamw_step";
  FOUNDRY_CHECK(a.param.defined() && a.grad.defined() && a.exp_avg.defined() && a.exp_avg_sq.defined(),
                "{}: param, grad, exp_avg and exp_avg_sq are required", op);
  check_dtype(op, "param", a.param, DType::f32);
  const auto check_like_param = [&](const char* what, const TensorView& t) {
    check_shape(op, what, t, a.param.shape);
    check_dtype(op, what, t, DType::f32);
    check_same_device(op, a.param, t);
  };
  check_like_param("grad", a.grad);
  check_like_param("exp_avg", a.exp_avg);
  check_like_param("exp_avg_sq", a.exp_avg_sq);
  FOUNDRY_CHECK(a.lr >= 0, "{}: lr must be >= 0, got {}", op, a.lr);
  FOUNDRY_CHECK(a.eps >= 0, "{}: eps must be >= 0, got {}", op, a.eps);
  FOUNDRY_CHECK(a.beta1 >= 0 && a.beta1 < 1, "{}: beta1 must be in [0, 1), got {}", op, a.beta1);
  FOUNDRY_CHECK(a.beta2 >= 0 && a.beta2 < 1, "{}: beta2 must be in [0, 1), got {}", op, a.beta2);
  FOUNDRY_CHECK(a.weight_decay >= 0, "{}: weight_decay must be >= 0, got {}", op, a.weight_decay);
  FOUNDRY_CHECK(a.step >= 1, "{}: step must be >= 1 (1-based), got {}", op, a.step);
  FOUNDRY_CHECK(std::isfinite(a.grad_scale), "{}: grad_scale must be finite, got {}", op, a.grad_scale);
  check_cpu(op, a.param);
  cpu::adamw_step(a);
}

double global_grad_norm(std::span<const TensorView> grads) {
  constexpr const char* op = "global_grad_norm";
  for (size_t i = 0; i < grads.size(); ++i) {
    const TensorView& g = grads[i];
    FOUNDRY_CHECK(g.defined() || g.numel() == 0, "{}: grads[{}] is undefined", op, i);
    FOUNDRY_CHECK(g.dtype == DType::f32 || g.dtype == DType::bf16,
                  "{}: grads[{}] has dtype {}, expected f32 or bf16", op, i, dtype_name(g.dtype));
    check_cpu(op, g);
  }
  return cpu::global_grad_norm(grads);
}

float clip_coefficient(double norm, double max_norm) {
  FOUNDRY_CHECK(max_norm > 0, "clip_coefficient: max_norm must be > 0, got {}", max_norm);
  FOUNDRY_CHECK(!(norm < 0), "clip_coefficient: norm must be >= 0, got {}", norm);
  const double coef = max_norm / (norm + 1e-6);
  return static_cast<float>(std::isnan(coef) ? coef : std::min(coef, 1.0));  // NaN norm -> NaN
}

void scale_(const TensorView& t, float s) {
  constexpr const char* op = "scale_";
  FOUNDRY_CHECK(t.defined() || t.numel() == 0, "{}: tensor is undefined", op);
  FOUNDRY_CHECK(t.dtype == DType::f32 || t.dtype == DType::bf16,
                "{}: tensor has dtype {}, expected f32 or bf16", op, dtype_name(t.dtype));
  check_cpu(op, t);
  cpu::scale_(t, s);
}

}  // namespace foundry
