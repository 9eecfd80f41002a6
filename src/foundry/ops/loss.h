// Fused cross-entropy: logits -> loss and dlogits in one pass over the vocabulary, in chunks
// with an online log-sum-exp, so no (N, V) softmax buffer is allocated.
//   lse_n  = log sum_v exp(logits[n, v])
//   ce_n   = lse_n - logits[n, target_n]
//   z_n    = z_loss_coeff * lse_n^2                       (PaLM's z-loss)
//   loss   = sum_n ce_n / D,  z_loss = sum_n z_n / D,   over tokens with target != ignore_index
//   dlogits[n, v] = grad_scale / D * ((1 + 2 z_loss_coeff lse_n) softmax_v - [v == target_n])
// D = token_count when > 0, else the number of valid tokens in this call. Ignored rows get zero
// gradient.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct CrossEntropyArgs {
  TensorView logits;   // (N, V) f32
  TensorView targets;  // (N) i32, in [0, V) or ignore_index
  int32_t ignore_index = -100;
  float z_loss_coeff = 0.f;
  double token_count = 0.0;  // D above; 0: the valid tokens of this call
  float grad_scale = 1.f;
  TensorView dlogits;  // (N, V) f32, written (=); may alias logits; empty: loss only
  TensorView losses;   // (N) f32 per-token ce_n (0 when ignored); may be empty
};

struct CrossEntropyResult {
  double loss = 0.0;     // sum ce / D
  double z_loss = 0.0;   // sum z / D
  int64_t num_valid = 0; // tokens whose target is not ignore_index
};

CrossEntropyResult cross_entropy_fused(const CrossEntropyArgs& args);

}  // namespace foundry
