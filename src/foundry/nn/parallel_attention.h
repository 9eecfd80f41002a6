// Tensor-parallel self-attention (Megatron-Core SelfAttention with a ColumnParallelLinear
// linear_qkv and a RowParallelLinear linear_proj): the heads are split over the tp group of size P.
// Rank r holds the query groups [r NKV/P, (r+1) NKV/P) and their G = NH/NKV query heads each:
//   linear_qkv  (NKV (G + 2) HD, H) in Megatron's grouped layout [q_g (G HD); k_g (HD); v_g (HD)]
//               per group g, so rank r's shard is the contiguous rows of its groups (shard_rows)
//   linear_qkv.bias (NKV (G + 2) HD), with add_qkv_bias: the same rows as the weight
//   linear_proj (H, NH HD): the columns of its heads r NH/P .. (shard_cols)
//   y = all_reduce_tp(Attention_r(x))   x replicated (N, H)
// i.e. a local nn::Attention with NH/P heads and NKV/P query groups between the column-parallel
// input region (backward all-reduce of dx) and the row-parallel output region (forward all-reduce).
// With sequence parallelism x is (N/P, H) per rank: all-gathered along tokens before, the output
// reduce-scattered after (and dx reduce-scattered / dy all-gathered in backward).
// Megatron requires num_query_groups % P == 0 (its TransformerConfig assert); so does this (KV heads
// are split, never replicated). With qk_layernorm the q/k norm weights (HD) are replicated and each
// rank's gradient covers only its own heads: the caller sums them over tp (as Megatron's
// finalize_model_grads does for replicated parameters that see part of the work).
// The SequenceLayout describes all N tokens (also with SP: attention runs on the gathered tokens).
#pragma once

#include "foundry/comm/communicator.h"
#include "foundry/nn/attention.h"

namespace foundry {

struct ParallelAttention {
  struct Config {
    Attention::Config attn;  // the full model's attention (hidden, NH, NKV, HD, ...)
    bool sequence_parallel = false;
  };
  using Saved = Attention::Saved;

  Config cfg;
  Communicator* tp;
  Attention local;  // NH/P heads, NKV/P query groups, the full hidden size

  ParallelAttention(Config c, Communicator& tp_group);
  // "...self_attention": linear_qkv (and its bias) / linear_proj as sharded ParamSpecs of the full
  // weights (rows of this rank's query groups / columns of its heads); q/k norm weights marked tp_grad_sum.
  void register_params(ParamTable& table, const std::string& name);

  // x (N, H), or (N/P, H) with SP -> y shaped as x
  Tensor forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, Saved& s) const;
  Tensor backward(Context& ctx, const Tensor& dy, const SequenceLayout& seq, const Saved& s);  // -> dx
};

}  // namespace foundry
