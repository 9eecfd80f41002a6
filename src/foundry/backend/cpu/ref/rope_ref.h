// Naive reference RoPE for tests (f64 angles and products, inv_freq and its Llama 3 scaling
// recomputed per element), same contract as ops/rope.h.
// R is taken as in the CPU backend (cpu::rope_rotary_dims).
#pragma once

#include "foundry/ops/rope.h"

namespace foundry::ref {

void rope_forward(const RopeArgs& args);
void rope_backward(const RopeArgs& args);  // dx written (=)

}  // namespace foundry::ref
