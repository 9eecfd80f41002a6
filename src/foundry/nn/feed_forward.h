// FeedForward: the interface of a transformer layer's MLP block (Megatron-Core's `mlp` submodule
// of TransformerLayer), so a layer can hold a dense SwiGLU MLP (nn/mlp.h) or a Mixture-of-Experts
// layer (moe/moe_layer.h) without nn/ depending on moe/:
//   y = FFN(x)   x, y (T, H)
// Each implementation keeps its saved activations in a subclass of FeedForward::State, created
// by new_state() before forward and handed back to backward.
#pragma once

#include <memory>
#include <string>

#include "foundry/core/context.h"
#include "foundry/nn/attention.h"
#include "foundry/nn/param.h"

namespace foundry {

class FeedForward {
 public:
  struct State {
    virtual ~State() = default;
  };

  virtual ~FeedForward() = default;
  virtual void register_params(ParamTable& table, const std::string& name) = 0;  // "decoder.layers.3.mlp"
  virtual std::unique_ptr<State> new_state() const = 0;

  // x (T, H) -> (T, H). `seq` describes the token rows (the MoE sequence-level aux loss groups by
  // sequence). A forward in training mode may update training statistics of the block (MoE
  // router token counts) but never its parameters.
  virtual Tensor forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, State& s) = 0;
  // dy (T, H) -> dx (T, H), written; parameter gradients accumulate. Auxiliary losses of the
  // forward (MoE load balancing) add their gradients scaled by ctx.aux_loss_scale.
  virtual Tensor backward(Context& ctx, const Tensor& dy, const State& s) = 0;
};

}  // namespace foundry
