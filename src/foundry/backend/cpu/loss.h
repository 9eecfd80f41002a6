// CPU fused cross-entropy (contract and formulas in ops/loss.h). Arguments reach
// cross_entropy_fused already validated by ops/loss.cpp.
#pragma once

#include <cstdint>
#include <cstring>

#include "foundry/backend/cpu/vector_math.h"
#include "foundry/ops/loss.h"

namespace foundry::cpu {

// logits (N, V) -> loss, z_loss, num_valid; dlogits (N, V) written (=) when defined (may alias
// logits); losses (N) written (=) when defined. Throws on a target outside [0, V) that is not
// ignore_index, naming the row and the value.
CrossEntropyResult cross_entropy_fused(const CrossEntropyArgs& args);

}  // namespace foundry::cpu
