// Pointwise activations, SwiGLU and softmax.
//   sigmoid(x)   = 1 / (1 + exp(-x))       (the shared-expert gate)
//   silu(x)      = x * sigmoid(x)
//   gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   gelu_erf(x)  = 0.5 x (1 + erf(x / sqrt(2)))
//   swiglu([g | u]) = silu(g) * u     (Megatron's fused linear_fc1 layout: gate first, then up)
//   softmax over the last dimension, computed with the row max subtracted.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

enum class Activation { silu, gelu_tanh, gelu_erf, sigmoid };

struct ActivationArgs {
  Activation kind = Activation::silu;
  TensorView x;   // (...) f32, forward input (also read by backward)
  TensorView y;   // (...) f32, forward output; may alias x
  TensorView dy;  // (...) f32, backward input
  TensorView dx;  // (...) f32, backward output (=); may alias dy
};
void activation_forward(const ActivationArgs& args);
void activation_backward(const ActivationArgs& args);

struct SwigluArgs {
  TensorView x;   // (N, 2F) f32: columns [0, F) gate, [F, 2F) up
  TensorView y;   // (N, F) f32
  TensorView dy;  // (N, F) f32
  TensorView dx;  // (N, 2F) f32, written (=)
};
void swiglu_forward(const SwigluArgs& args);
void swiglu_backward(const SwigluArgs& args);

struct SoftmaxArgs {
  TensorView x;   // (N, C) f32
  TensorView y;   // (N, C) f32; backward reads y, not x
  TensorView dy;  // (N, C) f32
  TensorView dx;  // (N, C) f32, written (=): dx = y * (dy - sum(dy * y))
};
void softmax_forward(const SoftmaxArgs& args);
void softmax_backward(const SoftmaxArgs& args);

}  // namespace foundry
