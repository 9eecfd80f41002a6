// Optimizer ops: fused AdamW (Loshchilov & Hutter 2019, decoupled weight decay, PyTorch's
// torch.optim.AdamW update order), global gradient norm and clipping.
//   g  = grad * grad_scale
//   p -= lr * weight_decay * p
//   m  = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// A parameter without weight decay is stepped with weight_decay = 0 (the ParamTable's mask).
#pragma once

#include <span>

#include "foundry/core/tensor.h"

namespace foundry {

struct AdamWArgs {
  TensorView param;       // (n) f32, updated in place
  TensorView grad;        // (n) f32
  TensorView exp_avg;     // (n) f32, m, updated in place
  TensorView exp_avg_sq;  // (n) f32, v, updated in place
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
  int64_t step = 1;        // 1-based step count for bias correction
  float grad_scale = 1.f;  // e.g. the clipping coefficient
};
void adamw_step(const AdamWArgs& args);

// sqrt(sum of squares) over all gradients, accumulated in f64.
double global_grad_norm(std::span<const TensorView> grads);
// PyTorch's clip_grad_norm_ coefficient: min(1, max_norm / (norm + 1e-6)).
float clip_coefficient(double norm, double max_norm);
// t *= s in place.
void scale_(const TensorView& t, float s);

}  // namespace foundry
