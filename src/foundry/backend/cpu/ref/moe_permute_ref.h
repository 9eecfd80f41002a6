// Naive reference MoE permute / unpermute for tests, same contract as ops/moe_permute.h:
// Megatron's formula literally (a stable sort of (expert, token) pairs), sums in f64.
#pragma once

#include "foundry/ops/moe_permute.h"

namespace foundry::ref {

void moe_permute_forward(const MoePermuteArgs& args);
void moe_permute_backward(const MoePermuteArgs& args);
void moe_unpermute_forward(const MoeUnpermuteArgs& args);
void moe_unpermute_backward(const MoeUnpermuteArgs& args);

}  // namespace foundry::ref
