// CPU RMSNorm and LayerNorm (contracts in ops/norm.h): OpenMP over rows, vectorised over H;
// backward reduces dweight/dbias through per-thread partial sums (deterministic for a fixed
// thread count).
#pragma once

#include "foundry/ops/norm.h"

namespace foundry::cpu {

void rmsnorm_forward(const NormArgs& args);
void rmsnorm_backward(const NormArgs& args);
void layernorm_forward(const NormArgs& args);
void layernorm_backward(const NormArgs& args);

}  // namespace foundry::cpu
