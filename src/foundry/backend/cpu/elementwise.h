// CPU residual add and bias add (contract in ops/elementwise.h): OpenMP-parallel, vectorised passes.
#pragma once

#include "foundry/ops/elementwise.h"

namespace foundry::cpu {

void add_forward(const AddArgs& args);
void add_backward(const AddArgs& args);
void bias_add_forward(const BiasAddArgs& args);
void bias_add_backward(const BiasAddArgs& args);

}  // namespace foundry::cpu
