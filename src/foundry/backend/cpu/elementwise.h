// CPU residual add (contract in ops/elementwise.h): one OpenMP-parallel, vectorised pass.
#pragma once

#include "foundry/ops/elementwise.h"

namespace foundry::cpu {

void add_forward(const AddArgs& args);
void add_backward(const AddArgs& args);

}  // namespace foundry::cpu
