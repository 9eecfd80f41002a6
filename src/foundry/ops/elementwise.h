// Residual add: out = a + b. Backward passes dout to both inputs, accumulated (+=), because
// the residual stream's gradient is the sum of every branch that reads it.
// Bias add over rows (a Linear's bias, e.g. Megatron's --add-qkv-bias on linear_qkv):
//   out[n, c] = x[n, c] + bias[c];   backward: dbias[c] += sum_n dout[n, c]
// (dx = dout, so the caller passes dout on itself). CPU only.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct AddArgs {
  TensorView a;     // (...) f32
  TensorView b;     // (...) f32, same shape
  TensorView out;   // (...) f32, may alias a or b
  TensorView dout;  // (...) f32, backward input
  TensorView da;    // (...) f32, accumulated (+=); may be empty
  TensorView db;    // (...) f32, accumulated (+=); may be empty
};

void add_forward(const AddArgs& args);
void add_backward(const AddArgs& args);

struct BiasAddArgs {
  TensorView x;      // (N, C) f32, forward input
  TensorView bias;   // (C) f32
  TensorView out;    // (N, C) f32, forward output; may alias x
  TensorView dout;   // (N, C) f32, backward input
  TensorView dbias;  // (C) f32, backward output, accumulated (+=)
};

void bias_add_forward(const BiasAddArgs& args);
void bias_add_backward(const BiasAddArgs& args);

}  // namespace foundry
