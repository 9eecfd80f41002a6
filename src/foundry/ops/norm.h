// RMSNorm and LayerNorm over the last dimension.
//   RMSNorm:   y = x * rstd * w,               rstd = 1 / sqrt(mean(x^2) + eps)
//   LayerNorm: y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var(x) + eps)  (biased variance)
// Statistics are computed in f32 and saved for backward (mean only for LayerNorm).
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct NormArgs {
  TensorView x;        // (N, H) f32
  TensorView weight;   // (H) f32
  TensorView bias;     // (H) f32, LayerNorm only; may be empty
  float eps = 1e-5f;
  TensorView y;        // (N, H) f32, forward output
  TensorView mean;     // (N) f32, LayerNorm only: written by forward, read by backward
  TensorView rstd;     // (N) f32: written by forward, read by backward
  TensorView dy;       // (N, H) f32, backward input
  TensorView dx;       // (N, H) f32, backward output: written (=), or added (+=) when accumulate_dx
  TensorView dweight;  // (H) f32, accumulated (+=)
  TensorView dbias;    // (H) f32, accumulated (+=), LayerNorm only
  bool accumulate_dx = false;  // the residual stream adds the norm's input gradient into its own
};

void rmsnorm_forward(const NormArgs& args);
void rmsnorm_backward(const NormArgs& args);
void layernorm_forward(const NormArgs& args);
void layernorm_backward(const NormArgs& args);

}  // namespace foundry
