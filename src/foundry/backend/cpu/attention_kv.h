// CPU attention with a key/value cache (decoding): appends the new keys/values to the caches,
// then a prefill of an empty cache runs the tiled training kernel, and anything else one exact
// two-pass softmax per (token, kv head group) over the cached keys. Contract and shapes:
// ops/attention.h (AttentionKvArgs, already validated by ops/attention_kv.cpp).
#pragma once

#include "foundry/ops/attention.h"

namespace foundry::cpu {

// Writes k_new / v_new (when given) into the caches at [past_len, past_len + Tq), then
// writes (=) out (B, Tq, NH, HD).
void attention_kv_forward(const AttentionKvArgs& args);

}  // namespace foundry::cpu
