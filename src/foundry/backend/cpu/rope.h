// CPU rotary position embedding, rotate-half layout (contract in ops/rope.h).
#pragma once

#include "foundry/ops/rope.h"

namespace foundry::cpu {

// R = HD * rotary_percent rotated dims (as Megatron's int(kv_channels * rotary_percent),
// tolerant of the f32 rounding of the percent: 0.7f * 10 gives 7, not 6). Not checked here.
int64_t rope_rotary_dims(int64_t HD, float rotary_percent);

void rope_forward(const RopeArgs& args);
void rope_backward(const RopeArgs& args);

}  // namespace foundry::cpu
