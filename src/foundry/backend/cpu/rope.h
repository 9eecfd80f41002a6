// CPU rotary position embedding, rotate-half layout (contract in ops/rope.h).
#pragma once

#include <vector>

#include "foundry/ops/rope.h"

namespace foundry::cpu {

// R = HD * rotary_percent rotated dims (as Megatron's int(kv_channels * rotary_percent),
// tolerant of the f32 rounding of the percent: 0.7f * 10 gives 7, not 6). Not checked here.
int64_t rope_rotary_dims(int64_t HD, float rotary_percent);

// inv_freq[i] = theta^(-2i / R), i < R/2, in f64, then the Llama 3 bands when scaling.enabled
// (ops/rope.h). Scaling factors are not checked here.
std::vector<double> rope_inv_freq(float theta, int64_t R, const RopeScaling& scaling);

void rope_forward(const RopeArgs& args);
void rope_backward(const RopeArgs& args);

}  // namespace foundry::cpu
