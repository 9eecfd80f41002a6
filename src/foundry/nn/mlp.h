// MLP with SwiGLU (Shazeer 2020; Megatron's gated linear unit with a fused fc1):
//   h = x W1^T  (N, 2F) = [gate | up];   a = silu(gate) * up  (N, F);   y = a W2^T  (N, H)
#pragma once

#include "foundry/core/context.h"
#include "foundry/nn/feed_forward.h"
#include "foundry/nn/linear.h"

namespace foundry {

struct MLP : FeedForward {
  struct Config {
    int64_t hidden = 0;  // H
    int64_t ffn = 0;     // F
    DType compute = DType::f32;
    float init_std = 0.02f;
    float output_init_std = 0.02f;
  };
  struct Saved : FeedForward::State {
    Linear::Saved fc1_in;
    Tensor h;  // (N, 2F)
    Linear::Saved fc2_in;
  };

  Config cfg;
  Linear linear_fc1;  // (2F, H)
  Linear linear_fc2;  // (H, F)

  explicit MLP(Config c);
  void register_params(ParamTable& table, const std::string& name) override;  // "...mlp"

  Tensor forward(Context& ctx, const Tensor& x, Saved& s) const;  // (N, H) -> (N, H)
  Tensor backward(Context& ctx, const Tensor& dy, const Saved& s);  // -> dx (N, H), written

  // FeedForward: the same, on a State made by new_state().
  std::unique_ptr<State> new_state() const override { return std::make_unique<Saved>(); }
  Tensor forward(Context& ctx, const Tensor& x, const SequenceLayout&, State& s) override {
    return forward(ctx, x, static_cast<Saved&>(s));
  }
  Tensor backward(Context& ctx, const Tensor& dy, const State& s) override {
    return backward(ctx, dy, static_cast<const Saved&>(s));
  }
};

}  // namespace foundry
