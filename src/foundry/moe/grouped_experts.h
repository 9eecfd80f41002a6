// GroupedExperts: E SwiGLU expert MLPs run together on expert-major rows (Megatron-Core's
// GroupedMLP / TEGroupedMLP), one grouped GEMM per projection over the variable token counts,
// with the routing probability applied after the activation (Megatron's default,
// moe_apply_probs_on_input = false, where the combine then sums unweighted):
//   h_r = x_r W1_e^T  (2F)   a_r = silu(gate) * up  (F)   w_r = p_r a_r   y_r = w_r W2_e^T  (H)
// for row r of expert e.
// Sharding (expert / expert-tensor parallelism, Megatron-Core's GroupedMLP / TEGroupedMLP with
// expert_tensor_parallel_size Q): num_experts and ffn are this rank's (E / P and F / Q); the
// parameters are registered as shards of the full tensors (E, 2F, H) and (E, H, F): experts
// [ep_rank E/P, (ep_rank+1) E/P) and, of each, fc1's rows [q F/Q, (q+1) F/Q) of the gate half and
// of the up half ([gate_q; up_q], as ParallelMLP::fc1_shard) and fc2's columns [q F/Q, (q+1) F/Q).
// The checkpoint names denote the full tensors; the shard of the full init is this rank's init.
#pragma once

#include "foundry/core/context.h"
#include "foundry/nn/param.h"

namespace foundry {

struct GroupedExperts {
  struct Config {
    int64_t hidden = 0;       // H
    int64_t ffn = 0;          // F: moe_ffn_hidden_size
    int64_t num_experts = 0;  // E (local experts)
    DType compute = DType::f32;  // bf16: GEMM inputs rounded to bf16, f32 accumulation (as nn/linear.h)
    float init_std = 0.02f;
    float output_init_std = 0.02f;
    int ep_rank = 0, ep_size = 1;    // expert-parallel position (the expert split of the params)
    int etp_rank = 0, etp_size = 1;  // expert-tensor-parallel position (the ffn split)
  };
  struct Saved {
    Tensor x;                  // (N, H) expert-major rows, in the compute dtype
    Tensor probs;              // (N)
    Tensor tokens_per_expert;  // (E) i64
    Tensor h;                  // (N, 2F)
    Tensor w;                  // (N, F) weighted activation p * silu(gate) * up (fc2's input), in the
                               // compute dtype; backward recomputes the unweighted one from h
    Tensor w1, w2;             // bf16 copies of the weights (compute = bf16 only)
  };
  struct Grads {
    Tensor dx;      // (N, H)
    Tensor dprobs;  // (N)
  };

  Config cfg;
  Param linear_fc1;  // (E_local, 2F_local, H): [gate_q; up_q] per expert
  Param linear_fc2;  // (E_local, H, F_local)

  explicit GroupedExperts(Config c) : cfg(c) {}
  void register_params(ParamTable& table, const std::string& name);  // "...mlp.experts"

  Tensor forward(Context& ctx, const Tensor& x, const Tensor& probs, const Tensor& tokens_per_expert, Saved& s) const;
  // dy (N, H) -> dx, dprobs (written); weight gradients accumulate.
  Grads backward(Context& ctx, const Tensor& dy, const Saved& s);
};

}  // namespace foundry
