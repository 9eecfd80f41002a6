#include "foundry/moe/shared_experts.h"

#include "foundry/ops/activation.h"
#include "foundry/ops/elementwise.h"
#include "foundry/ops/moe_rows.h"

namespace foundry {

SharedExperts::SharedExperts(Config c)
    : cfg(c),
      mlp({.hidden = c.hidden, .ffn = c.ffn, .compute = c.compute, .init_std = c.init_std,
           .output_init_std = c.output_init_std}),
      gate_weight({.in = c.hidden, .out = 1, .init = Init::normal(c.init_std)}) {}

void SharedExperts::register_params(ParamTable& table, const std::string& name) {
  mlp.register_params(table, name);
  // Megatron names the gate "gate_weight" (a bare Parameter, not a linear layer).
  if (cfg.gate) table.add(gate_weight.weight, {.name = name + ".gate_weight", .shape = {1, cfg.hidden},
                                               .init = gate_weight.cfg.init});
}

Tensor SharedExperts::forward(Context& ctx, const Tensor& x, Saved& s) const {
  Tensor y = mlp.forward(ctx, x, s.mlp);  // (T, H)
  if (!cfg.gate) return y;
  const int64_t T = x.size(0);
  s.m = y;
  s.gate_logit = gate_weight.forward(ctx, x, s.gate_in).reshape({T});  // (T)
  s.gate = Tensor::empty({T}, DType::f32, x.device());
  activation_forward({.kind = Activation::sigmoid, .x = s.gate_logit, .y = s.gate});
  Tensor out = Tensor::empty(y.shape(), DType::f32, x.device());
  row_scale_forward({.x = s.m, .s = s.gate, .y = out});  // out[t] = gate[t] * m[t]
  return out;
}

Tensor SharedExperts::backward(Context& ctx, const Tensor& dy, const Saved& s) {
  if (!cfg.gate) return mlp.backward(ctx, dy, s.mlp);
  const int64_t T = dy.size(0);
  // dm = dy * gate;  dgate[t] = <dy[t], m[t]>;  dlogit = dgate * sigmoid'(logit)
  Tensor dm = Tensor::empty(dy.shape(), DType::f32, dy.device());
  Tensor dgate = Tensor::empty({T}, DType::f32, dy.device());
  row_scale_backward({.x = s.m, .s = s.gate, .dy = dy, .dx = dm, .ds = dgate});
  activation_backward({.kind = Activation::sigmoid, .x = s.gate_logit, .dy = dgate, .dx = dgate});
  Tensor dx = mlp.backward(ctx, dm, s.mlp);
  add_backward({.dout = gate_weight.backward(ctx, dgate.reshape({T, 1}), s.gate_in), .da = dx});
  return dx;
}

}  // namespace foundry
