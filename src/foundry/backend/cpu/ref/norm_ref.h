// Naive reference RMSNorm / LayerNorm for tests (f64 accumulation), same contract as
// ops/norm.h: forward writes y, rstd (and mean for LayerNorm); backward reads the saved stats,
// writes dx (=, or += with accumulate_dx) and accumulates dweight, dbias (+=).
#pragma once

#include "foundry/ops/norm.h"

namespace foundry::ref {

void rmsnorm_forward(const NormArgs& args);
void rmsnorm_backward(const NormArgs& args);
void layernorm_forward(const NormArgs& args);
void layernorm_backward(const NormArgs& args);

}  // namespace foundry::ref
