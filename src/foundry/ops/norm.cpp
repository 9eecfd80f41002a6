// RMSNorm / LayerNorm: validates shapes, dtypes and devices, then dispatches on the device.
#include "foundry/ops/norm.h"

#include <cmath>

#include "foundry/backend/cpu/norm.h"
#include "foundry/ops/pointwise_checks.h"

namespace foundry {

using detail::check_cpu;
using detail::check_tensor;

namespace {

// x (N, H), weight (H), eps; RMSNorm takes no bias and LayerNorm an optional (H) one.
void check_common(std::string_view op, const NormArgs& a, bool layer) {
  check_tensor(op, "x", a.x, DType::f32);
  FOUNDRY_CHECK(a.x.ndim() == 2 && a.x.size(1) > 0, "{}: x must be 2-D (N, H) with H > 0, got shape {}",
                op, a.x.shape.str());
  check_tensor(op, "weight", a.weight, DType::f32, Shape{a.x.size(1)});
  FOUNDRY_CHECK(a.eps >= 0.f && std::isfinite(a.eps), "{}: eps must be finite and >= 0, got {}",
                op, a.eps);
  if (!layer) {
    FOUNDRY_CHECK(!a.bias.defined() && !a.dbias.defined(),
                  "{}: RMSNorm has no bias, but bias/dbias was given", op);
  }
}

void check_forward(std::string_view op, const NormArgs& a, bool layer) {
  check_common(op, a, layer);
  const int64_t N = a.x.size(0), H = a.x.size(1);
  if (layer && a.bias.defined()) check_tensor(op, "bias", a.bias, DType::f32, Shape{H});
  check_tensor(op, "y", a.y, DType::f32, a.x.shape);
  if (layer) check_tensor(op, "mean", a.mean, DType::f32, Shape{N});
  check_tensor(op, "rstd", a.rstd, DType::f32, Shape{N});
  check_cpu(op, {a.x, a.weight, a.bias, a.y, a.mean, a.rstd});
}

void check_backward(std::string_view op, const NormArgs& a, bool layer) {
  check_common(op, a, layer);
  const int64_t N = a.x.size(0), H = a.x.size(1);
  if (layer) check_tensor(op, "mean", a.mean, DType::f32, Shape{N});
  check_tensor(op, "rstd", a.rstd, DType::f32, Shape{N});
  check_tensor(op, "dy", a.dy, DType::f32, a.x.shape);
  check_tensor(op, "dx", a.dx, DType::f32, a.x.shape);
  check_tensor(op, "dweight", a.dweight, DType::f32, Shape{H});
  // A LayerNorm with a bias needs its gradient; without bias, dbias is optional.
  if (layer && (a.bias.defined() || a.dbias.defined()))
    check_tensor(op, "dbias", a.dbias, DType::f32, Shape{H});
  check_cpu(op, {a.x, a.weight, a.mean, a.rstd, a.dy, a.dx, a.dweight, a.dbias});
}

}  // namespace

void rmsnorm_forward(const NormArgs& args) {
  check_forward("rmsnorm_forward", args, false);
  cpu::rmsnorm_forward(args);
}

// dx written (=), or added (+=) when accumulate_dx; dweight accumulated (+=).
void rmsnorm_backward(const NormArgs& args) {
  check_backward("rmsnorm_backward", args, false);
  cpu::rmsnorm_backward(args);
}

void layernorm_forward(const NormArgs& args) {
  check_forward("layernorm_forward", args, true);
  cpu::layernorm_forward(args);
}

// dx written (=), or added (+=) when accumulate_dx; dweight and dbias accumulated (+=).
void layernorm_backward(const NormArgs& args) {
  check_backward("layernorm_backward", args, true);
  cpu::layernorm_backward(args);
}

}  // namespace foundry
