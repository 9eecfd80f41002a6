#pragma once

#include "foundry/ops/elementwise.h"

namespace foundry::cuda {

void add_forward(const AddArgs& args);
void add_backward(const AddArgs& args);

}  // namespace foundry::cuda
