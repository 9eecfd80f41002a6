// Attention layouts: split Megatron's fused QKV projection output into q, k, v and merge the
// gradients back. Megatron-Core groups the fused rows by key/value head so tensor parallelism
// can split them contiguously: for each of the NKV groups, G = NH / NKV query heads, then one
// key head, then one value head (megatron/core/transformer/attention.py,
// get_query_key_value_tensors).
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct QkvSplitArgs {
  int64_t num_heads = 0;     // NH
  int64_t num_kv_heads = 0;  // NKV
  TensorView qkv;  // (T, NKV * (G + 2) * HD) f32
  TensorView q;    // (T, NH, HD) f32
  TensorView k;    // (T, NKV, HD) f32
  TensorView v;    // (T, NKV, HD) f32
};

// forward: qkv -> q, k, v (written). backward: q, k, v (the gradients) -> qkv (written).
void qkv_split_forward(const QkvSplitArgs& args);
void qkv_split_backward(const QkvSplitArgs& args);

}  // namespace foundry
