// Vocabulary-parallel embedding and cross-entropy (Megatron-Core tensor_parallel/layers.py
// VocabParallelEmbedding, tensor_parallel/cross_entropy.py vocab_parallel_cross_entropy), over the
// tp group of size P, rank r owning vocabulary rows [r V/P, (r+1) V/P) = [start, end).
//
// Embedding:  out = all_reduce_tp(e_r),  e_r[t] = W_r[ids[t] - start] if start <= ids[t] < end else 0
//             (reduce-scattered along tokens with sequence parallelism: (N/P, H) per rank).
//             Backward: W_r.grad[ids[t] - start] += dy[t] for the owned ids (dy all-gathered
//             first with SP).
// Cross-entropy on logits split along the vocabulary, logits_r (N, V/P):
//   m_n   = max_tp(max_v logits_r[n, v])                        all-reduce (max)
//   S_n   = sum_tp(sum_v exp(logits_r[n, v] - m_n)),  lse_n = m_n + log S_n
//   x_n   = sum_tp(logits_r[n, target_n - start] if owned else 0)   (the owning rank's logit)
//   ce_n  = lse_n - x_n;   z_n = z_loss_coeff lse_n^2
//   dlogits_r[n, v] = grad_scale / D ((1 + 2 z_loss_coeff lse_n) exp(logits_r[n, v] - lse_n)
//                                     - [v + start == target_n])       (local: no communication)
// with ignore_index, D (token_count) and the loss sums exactly as ops/loss.h cross_entropy_fused
// on the full logits (every rank returns the same loss). S and x travel in one all-reduce.
// CPU tensors (host loops).
#pragma once

#include "foundry/comm/communicator.h"
#include "foundry/nn/param.h"
#include "foundry/core/context.h"
#include "foundry/ops/loss.h"

namespace foundry {

struct VocabParallelEmbedding {
  struct Config {
    int64_t vocab = 0;  // full V; V % P == 0
    int64_t hidden = 0;
    Init init = Init::normal(0.02f);
    bool sequence_parallel = false;
  };
  struct Saved {
    Tensor local_ids;  // (N) i32: ids[t] - start, or -1 when another rank owns the row
  };

  Config cfg;
  Communicator* tp;
  int64_t start = 0, end = 0;  // owned rows of the full vocabulary
  Param weight;                // (V/P, H)

  VocabParallelEmbedding(Config c, Communicator& tp_group);
  void register_params(ParamTable& table, const std::string& name);  // split axis 0

  // ids (N) i32 (all tokens on every rank) -> (N, H), or (N/P, H) with SP
  Tensor forward(Context& ctx, const Tensor& ids, Saved& s) const;
  // dy shaped as forward's output; weight.grad += (owned rows)
  void backward(Context& ctx, const Tensor& dy, const Saved& s);
};

struct VocabParallelCrossEntropyArgs {
  TensorView logits;   // (N, V/P) f32, this rank's vocabulary columns [vocab_start, + V/P)
  TensorView targets;  // (N) i32 full-vocabulary ids, or ignore_index (same on every rank)
  int64_t vocab_start = 0;
  int32_t ignore_index = -100;
  float z_loss_coeff = 0.f;
  double token_count = 0.0;  // D; 0: the valid tokens of this call
  float grad_scale = 1.f;
  TensorView dlogits;  // (N, V/P) f32, written (=); may alias logits; empty: loss only
  TensorView losses;   // (N) f32 per-token ce_n (0 when ignored); may be empty
};

// Same result as cross_entropy_fused on the full (N, V) logits, on every rank of tp.
CrossEntropyResult vocab_parallel_cross_entropy(Communicator& tp, const VocabParallelCrossEntropyArgs& args);

}  // namespace foundry
