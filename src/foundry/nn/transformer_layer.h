// Pre-norm transformer layer (Megatron-Core TransformerLayer with RMSNorm, as in Llama):
//   x1  = x + Attention(RMSNorm(x))
//   out = x1 + MLP(RMSNorm(x1))
// backward: the residual gradient flows straight through and each branch's input gradient is
// added to it (the norms accumulate into the residual gradient).
#pragma once

#include "foundry/nn/attention.h"
#include "foundry/nn/mlp.h"
#include "foundry/nn/rmsnorm.h"

namespace foundry {

struct TransformerLayer {
  struct Config {
    Attention::Config attention;
    MLP::Config mlp;
    float norm_eps = 1e-5f;
  };
  struct Saved {
    RMSNorm::Saved input_norm;
    Attention::Saved attention;
    RMSNorm::Saved pre_mlp_norm;
    MLP::Saved mlp;
  };

  Config cfg;
  RMSNorm input_layernorm;
  Attention self_attention;
  RMSNorm pre_mlp_layernorm;
  MLP mlp;

  explicit TransformerLayer(Config c);
  void register_params(ParamTable& table, const std::string& name);  // "decoder.layers.3"

  Tensor forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, Saved& s) const;  // (T, H)
  // dout (T, H) -> dx (T, H); parameter gradients accumulate.
  Tensor backward(Context& ctx, const Tensor& dout, const SequenceLayout& seq, const Saved& s);

  // Inference with a key/value cache (Attention::forward_inference): x (B Tq, H) -> (B Tq, H).
  Tensor forward_inference(Context& ctx, const Tensor& x, int64_t batch, int64_t past_len,
                           const Tensor& k_cache, const Tensor& v_cache) const;
};

}  // namespace foundry
