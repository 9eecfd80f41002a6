// Residual add: out = a + b. Backward passes dout to both inputs, accumulated (+=), because
// the residual stream's gradient is the sum of every branch that reads it.
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

}  // namespace foundry
