// Pre-norm transformer layer (Megatron-Core TransformerLayer with RMSNorm, as in Llama):
//   x1  = x + Attention(RMSNorm(x))
//   out = x1 + FFN(RMSNorm(x1))        FFN: a dense SwiGLU MLP or a Mixture-of-Experts layer
// (nn/feed_forward.h; models/ build MoE layers and hand them in).
// backward: the residual gradient flows straight through and each branch's input gradient is
// added to it (the norms accumulate into the residual gradient).
// Tensor parallelism (Config::tp): the attention is a ParallelAttention (heads split over tp) and the
// dense MLP a ParallelMLP; with sequence parallelism x and the residual stream are this rank's T/P
// tokens, the norms run on them and their weights' gradients are summed over tp (tp_grad_sum).
#pragma once

#include <memory>
#include <optional>

#include "foundry/nn/attention.h"
#include "foundry/nn/feed_forward.h"
#include "foundry/nn/mlp.h"
#include "foundry/nn/parallel_attention.h"
#include "foundry/nn/parallel_mlp.h"
#include "foundry/nn/rmsnorm.h"

namespace foundry {

struct TransformerLayer {
  struct Config {
    Attention::Config attention;
    MLP::Config mlp;  // the dense MLP built when no FFN is handed to the constructor
    float norm_eps = 1e-5f;
    Communicator* tp = nullptr;      // tensor-parallel group (outlives the layer); null: none
    bool sequence_parallel = false;  // with tp: activations split along tokens
  };
  struct Saved {
    RMSNorm::Saved input_norm;
    Attention::Saved attention;
    RMSNorm::Saved pre_mlp_norm;
    std::unique_ptr<FeedForward::State> mlp;
  };

  Config cfg;
  RMSNorm input_layernorm;
  Attention self_attention;                            // without tp
  std::optional<ParallelAttention> parallel_attention;  // with tp
  RMSNorm pre_mlp_layernorm;
  std::unique_ptr<FeedForward> mlp;

  explicit TransformerLayer(Config c);  // dense MLP from c.mlp (a ParallelMLP with tp)
  TransformerLayer(Config c, std::unique_ptr<FeedForward> ffn);          // any FFN (e.g. MoELayer)
  void register_params(ParamTable& table, const std::string& name);  // "decoder.layers.3"

  // (T, H) -> (T, H). Parameters are not changed; a training forward may update an MoE router's
  // token counters (training statistics), which is why the FFN is held by pointer.
  Tensor forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, Saved& s) const;
  // dout (T, H) -> dx (T, H); parameter gradients accumulate.
  Tensor backward(Context& ctx, const Tensor& dout, const SequenceLayout& seq, const Saved& s);

  // Inference with a key/value cache (Attention::forward_inference): x (B Tq, H) -> (B Tq, H).
  Tensor forward_inference(Context& ctx, const Tensor& x, int64_t batch, int64_t past_len,
                           const Tensor& k_cache, const Tensor& v_cache) const;
};

}  // namespace foundry
