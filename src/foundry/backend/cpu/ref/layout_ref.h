// Naive reference for the QKV split (ops/layout.h): index arithmetic written out per element.
#pragma once

#include "foundry/ops/layout.h"

namespace foundry::ref {

void qkv_split_forward(const QkvSplitArgs& args);
void qkv_split_backward(const QkvSplitArgs& args);

}  // namespace foundry::ref
