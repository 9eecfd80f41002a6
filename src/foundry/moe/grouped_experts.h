// GroupedExperts: E SwiGLU expert MLPs run together on expert-major rows (Megatron-Core's
// GroupedMLP / TEGroupedMLP), one grouped GEMM per projection over the variable token counts,
// with the routing probability applied after the activation (Megatron's default,
// moe_apply_probs_on_input = false, where the combine then sums unweighted):
//   h_r = x_r W1_e^T  (2F)   a_r = silu(gate) * up  (F)   w_r = p_r a_r   y_r = w_r W2_e^T  (H)
// for row r of expert e.
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
  Param linear_fc1;  // (E, 2F, H): [gate; up] per expert
  Param linear_fc2;  // (E, H, F)

  explicit GroupedExperts(Config c) : cfg(c) {}
  void register_params(ParamTable& table, const std::string& name);  // "...mlp.experts"

  Tensor forward(Context& ctx, const Tensor& x, const Tensor& probs, const Tensor& tokens_per_expert, Saved& s) const;
  // dy (N, H) -> dx, dprobs (written); weight gradients accumulate.
  Grads backward(Context& ctx, const Tensor& dy, const Saved& s);
};

}  // namespace foundry
