// Naive reference for attention with a key/value cache (tests only): per query row in f64,
// same contract as ops/attention.h (AttentionKvArgs).
#pragma once

#include "foundry/ops/attention.h"

namespace foundry::ref {

// Appends k_new / v_new (when given) to the caches, then writes (=) out.
void attention_kv_forward(const AttentionKvArgs& args);

}  // namespace foundry::ref
