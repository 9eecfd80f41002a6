// CPU attention: FlashAttention-2 (Dao 2023, Algorithms 1 and 2) blocked over queries and keys,
// with online softmax in the forward pass and P recomputed from the saved log-sum-exp in the
// backward pass. Contract and shapes: ops/attention.h (args already validated by
// ops/attention.cpp).
#pragma once

#include "foundry/ops/attention.h"

namespace foundry::cpu {

// Writes (=) out (T, NH, HD) and lse (T, NH).
void attention_forward(const AttentionArgs& args);
// Reads q, k, v, out, lse, dout; writes (=) dq (T, NH, HD), dk and dv (T, NKV, HD).
void attention_backward(const AttentionArgs& args);

}  // namespace foundry::cpu
