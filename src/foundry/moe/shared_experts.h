// SharedExperts (Megatron-Core moe/shared_experts.py SharedExpertMLP): a dense SwiGLU MLP that
// every token passes through beside the routed experts, of width
// moe_shared_expert_intermediate_size (= number of shared experts x expert width), with an
// optional sigmoid gate (moe_shared_expert_gate; Qwen2-MoE's shared_expert_gate):
//   y = MLP(x)                          without the gate
//   y = sigmoid(x g^T) * MLP(x)         g (1, H), one scalar gate per token
// Parameters: "...mlp.shared_experts.linear_fc1.weight" (2F, H), "...linear_fc2.weight" (H, F),
// "...gate_weight" (1, H).
#pragma once

#include "foundry/nn/mlp.h"

namespace foundry {

struct SharedExperts {
  struct Config {
    int64_t hidden = 0;  // H
    int64_t ffn = 0;     // F
    bool gate = false;
    DType compute = DType::f32;
    float init_std = 0.02f;
    float output_init_std = 0.02f;
  };
  struct Saved {
    MLP::Saved mlp;
    Tensor m;               // (T, H) MLP output (gated only)
    Linear::Saved gate_in;  // gated only
    Tensor gate_logit;      // (T) x g^T
    Tensor gate;            // (T) sigmoid(x g^T)
  };

  Config cfg;
  MLP mlp;
  Linear gate_weight;  // (1, H)

  explicit SharedExperts(Config c);
  void register_params(ParamTable& table, const std::string& name);  // "...mlp.shared_experts"

  Tensor forward(Context& ctx, const Tensor& x, Saved& s) const;  // (T, H) -> (T, H)
  Tensor backward(Context& ctx, const Tensor& dy, const Saved& s);  // -> dx (T, H), written
};

}  // namespace foundry
