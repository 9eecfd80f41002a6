#pragma once

#include "foundry/ops/layout.h"

namespace foundry::cpu {

void qkv_split_forward(const QkvSplitArgs& args);
void qkv_split_backward(const QkvSplitArgs& args);

}  // namespace foundry::cpu
