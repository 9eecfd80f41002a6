// Fused cross-entropy: argument checks and device dispatch (formulas in loss.h).
#include "foundry/ops/loss.h"

#include <cmath>

#include "foundry/backend/cpu/loss.h"

namespace foundry {

namespace {

// True when the byte ranges of a and b overlap.
bool overlaps(const TensorView& a, const TensorView& b) {
  const char* a0 = static_cast<const char*>(a.data);
  const char* b0 = static_cast<const char*>(b.data);
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

}  // namespace

CrossEntropyResult cross_entropy_fused(const CrossEntropyArgs& a) {
  constexpr const char* op = "cross_entropy_fused";
  FOUNDRY_CHECK(a.logits.defined() && a.targets.defined(), "{}: logits and targets are required", op);
  FOUNDRY_CHECK(a.logits.ndim() == 2, "{}: logits must be (N, V), got {}", op, a.logits.str());
  check_dtype(op, "logits", a.logits, DType::f32);
  const int64_t N = a.logits.size(0), V = a.logits.size(1);
  FOUNDRY_CHECK(V >= 1, "{}: logits {} has an empty vocabulary", op, a.logits.str());
  check_shape(op, "targets", a.targets, Shape{N});
  check_dtype(op, "targets", a.targets, DType::i32);
  check_same_device(op, a.logits, a.targets);
  if (a.dlogits.defined()) {
    check_shape(op, "dlogits", a.dlogits, a.logits.shape);
    check_dtype(op, "dlogits", a.dlogits, DType::f32);
    check_same_device(op, a.logits, a.dlogits);
    FOUNDRY_CHECK(a.dlogits.data == a.logits.data || !overlaps(a.dlogits, a.logits),
                  "{}: dlogits overlaps logits without aliasing it exactly", op);
  }
  if (a.losses.defined()) {
    check_shape(op, "losses", a.losses, Shape{N});
    check_dtype(op, "losses", a.losses, DType::f32);
    check_same_device(op, a.logits, a.losses);
  }
  FOUNDRY_CHECK(std::isfinite(a.token_count) && a.token_count >= 0,
                "{}: token_count must be >= 0 and finite, got {}", op, a.token_count);
  FOUNDRY_CHECK(std::isfinite(a.z_loss_coeff) && a.z_loss_coeff >= 0,
                "{}: z_loss_coeff must be >= 0 and finite, got {}", op, a.z_loss_coeff);
  FOUNDRY_CHECK(std::isfinite(a.grad_scale), "{}: grad_scale must be finite, got {}", op,
                a.grad_scale);
  FOUNDRY_CHECK(a.logits.device.is_cpu(), "{}: device {} is not supported in this build", op,
                a.logits.device.str());
  return cpu::cross_entropy_fused(a);
}

}  // namespace foundry
