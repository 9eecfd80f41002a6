#include "foundry/nn/linear.h"

#include "foundry/ops/gemm.h"

namespace foundry {

void Linear::register_params(ParamTable& table, const std::string& name) {
  FOUNDRY_CHECK(cfg.in > 0 && cfg.out > 0, "Linear '{}': in {} and out {} must be positive", name,
                cfg.in, cfg.out);
  FOUNDRY_CHECK(cfg.compute == DType::f32 || cfg.compute == DType::bf16,
                "Linear '{}': compute dtype {} (expected f32 or bf16)", name, dtype_name(cfg.compute));
  table.add(weight, {.name = name + ".weight", .shape = {cfg.out, cfg.in}, .init = cfg.init,
                     .tp_split_axis = cfg.tp_split_axis});
}

Tensor Linear::forward(Context& ctx, const Tensor& x, Saved& s) const {
  FOUNDRY_CHECK(x.ndim() == 2 && x.size(1) == cfg.in, "Linear: input {} does not match in = {}",
                x.shape().str(), cfg.in);
  Tensor y = Tensor::empty({x.size(0), cfg.out}, DType::f32, x.device());  // (N, out)
  if (cfg.compute == DType::bf16) {
    s.x = x.to(DType::bf16);
    s.w = weight.value.to(DType::bf16);
  } else {
    s.x = x;
  }
  const Tensor& w = cfg.compute == DType::bf16 ? s.w : weight.value;
  gemm({.a = s.x, .b = w, .c = y, .trans_b = true});
  return y;
}

Tensor Linear::backward(Context& ctx, const Tensor& dy, const Saved& s) {
  const Tensor dy_c = cfg.compute == DType::bf16 ? dy.to(DType::bf16) : dy;  // (N, out)
  const Tensor& w = cfg.compute == DType::bf16 ? s.w : weight.value;          // (out, in)
  Tensor dx = Tensor::empty({dy.size(0), cfg.in}, DType::f32, dy.device());  // (N, in)
  gemm({.a = dy_c, .b = w, .c = dx});
  gemm({.a = dy_c, .b = s.x, .c = weight.grad, .trans_a = true, .beta = 1.f});  // += dy^T x
  return dx;
}

}  // namespace foundry
