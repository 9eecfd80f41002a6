#include "foundry/nn/mlp.h"

#include "foundry/ops/activation.h"

namespace foundry {

MLP::MLP(Config c)
    : cfg(c),
      linear_fc1({.in = c.hidden, .out = 2 * c.ffn, .init = Init::normal(c.init_std),
                  .compute = c.compute, .tp_split_axis = 0}),
      linear_fc2({.in = c.ffn, .out = c.hidden, .init = Init::normal(c.output_init_std),
                  .compute = c.compute, .tp_split_axis = 1}) {}

void MLP::register_params(ParamTable& table, const std::string& name) {
  linear_fc1.register_params(table, name + ".linear_fc1");
  linear_fc2.register_params(table, name + ".linear_fc2");
}

Tensor MLP::forward(Context& ctx, const Tensor& x, Saved& s) const {
  s.h = linear_fc1.forward(ctx, x, s.fc1_in);                           // (N, 2F)
  Tensor a = Tensor::empty({x.size(0), cfg.ffn}, DType::f32, x.device());  // (N, F)
  swiglu_forward({.x = s.h, .y = a});
  return linear_fc2.forward(ctx, a, s.fc2_in);  // (N, H)
}

Tensor MLP::backward(Context& ctx, const Tensor& dy, const Saved& s) {
  Tensor da = linear_fc2.backward(ctx, dy, s.fc2_in);                          // (N, F)
  Tensor dh = Tensor::empty({dy.size(0), 2 * cfg.ffn}, DType::f32, dy.device());  // (N, 2F)
  swiglu_backward({.x = s.h, .dy = da, .dx = dh});
  return linear_fc1.backward(ctx, dh, s.fc1_in);
}

}  // namespace foundry
