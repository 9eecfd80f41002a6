// Scaled dot-product attention, blocked with online softmax (FlashAttention-2, Dao 2023): the
// S x S score matrix is never materialised; forward saves the log-sum-exp of each query row so
// backward recomputes probabilities block by block.
//   out[t, h] = sum_s softmax_s(scale * q[t, h] . k[s, h / G]) v[s, h / G],   G = NH / NKV
// over the keys s of t's own sequence (s <= t when causal). Sequences are packed along T and
// given by cumulative lengths (no attention across documents); without cu_seqlens the T tokens
// are `batch` sequences of equal length.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct AttentionArgs {
  TensorView q;           // (T, NH, HD) f32, HD <= 256
  TensorView k;           // (T, NKV, HD) f32, NH % NKV == 0 (NKV == 1: MQA)
  TensorView v;           // (T, NKV, HD) f32
  TensorView cu_seqlens;  // (num_seqs + 1) i32, 0 = cu[0] < ... <= cu[num_seqs] = T; may be empty
  int64_t batch = 1;      // used when cu_seqlens is empty: T = batch * S
  bool causal = true;
  float scale = 0.f;      // 0 means 1 / sqrt(HD)
  TensorView out;   // (T, NH, HD) f32, forward output
  TensorView lse;   // (T, NH) f32, forward output, read by backward
  TensorView dout;  // (T, NH, HD) f32, backward input
  TensorView dq;    // (T, NH, HD) f32, written (=)
  TensorView dk;    // (T, NKV, HD) f32, written (=)
  TensorView dv;    // (T, NKV, HD) f32, written (=)
};

void attention_forward(const AttentionArgs& args);
void attention_backward(const AttentionArgs& args);

// Attention for decoding with a key/value cache (the contract of FlashAttention's
// flash_attn_with_kvcache, flash_attn/flash_attn_interface.py, with one cache length for the
// whole batch). Each batch row b holds one sequence whose first past_len positions are already
// in the caches; the Tq new tokens sit at positions past_len .. past_len + Tq - 1. When k_new and
// v_new are given they are first written into the caches at those positions (the append),
// then every new query attends causally to the past_len + Tq cached positions:
//   out[b, i, h] = sum_{s <= past_len + i} softmax_s(scale * q[b, i, h] . K[b, s, h / G]) V[b, s, h / G]
// Forward only (inference): no lse, no backward.
struct AttentionKvArgs {
  TensorView q;        // (B, Tq, NH, HD) f32, HD <= 256, already rotated (RoPE at past_len + i)
  TensorView k_new;    // (B, Tq, NKV, HD) f32, optional: appended to k_cache before attending
  TensorView v_new;    // (B, Tq, NKV, HD) f32, optional (given together with k_new)
  TensorView k_cache;  // (B, Smax, NKV, HD) f32, NH % NKV == 0; rows [0, past_len + Tq) are read
  TensorView v_cache;  // (B, Smax, NKV, HD) f32
  int64_t past_len = 0;  // positions already cached; past_len + Tq <= Smax
  float scale = 0.f;     // 0 means 1 / sqrt(HD)
  TensorView out;        // (B, Tq, NH, HD) f32, written (=)
};

void attention_kv_forward(const AttentionKvArgs& args);

}  // namespace foundry
