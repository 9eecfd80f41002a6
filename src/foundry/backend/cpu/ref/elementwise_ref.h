// Naive reference residual add and bias add for tests (f64 arithmetic), same contract as ops/elementwise.h.
#pragma once

#include "foundry/ops/elementwise.h"

namespace foundry::ref {

void add_forward(const AddArgs& args);
void add_backward(const AddArgs& args);  // da += dout, db += dout (each when defined)
void bias_add_forward(const BiasAddArgs& args);
void bias_add_backward(const BiasAddArgs& args);  // dbias += column sums of dout

}  // namespace foundry::ref
