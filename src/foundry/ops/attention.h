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

}  // namespace foundry
