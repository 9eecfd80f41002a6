#include "foundry/nn/rmsnorm.h"

#include "foundry/ops/norm.h"

namespace foundry {

void RMSNorm::register_params(ParamTable& table, const std::string& name) {
  table.add(weight, {.name = name + ".weight", .shape = {cfg.hidden}, .init = Init::ones(),
                     .weight_decay = false});
}

Tensor RMSNorm::forward(Context& ctx, const Tensor& x, Saved& s) const {
  s.x = x;
  s.rstd = Tensor::empty({x.size(0)}, DType::f32, x.device());
  Tensor y = Tensor::empty(x.shape(), DType::f32, x.device());
  rmsnorm_forward({.x = x, .weight = weight.value, .eps = cfg.eps, .y = y, .rstd = s.rstd});
  return y;
}

void RMSNorm::backward(Context& ctx, const Tensor& dy, const Saved& s, const Tensor& dx_accumulate) {
  rmsnorm_backward({.x = s.x, .weight = weight.value, .eps = cfg.eps, .rstd = s.rstd, .dy = dy,
                    .dx = dx_accumulate, .dweight = weight.grad, .accumulate_dx = true});
}

}  // namespace foundry
