// Naive references of ops/moe_rows.h for tests.
#pragma once

#include "foundry/ops/moe_rows.h"

namespace foundry::ref {

void row_scale_forward(const RowScaleArgs& args);
void row_scale_backward(const RowScaleArgs& args);

}  // namespace foundry::ref
