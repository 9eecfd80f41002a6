// GPTModel: a Llama-style dense decoder assembled from nn/ modules, with Megatron-Core
// parameter names (embedding.word_embeddings, decoder.layers.N.*, decoder.final_layernorm,
// output_layer):
//   x = E[tokens];  x = layer_l(x) for l < L;  logits = RMSNorm(x) W_out^T   (W_out = E if tied)
// forward() returns the logits; the caller computes the loss (ops/loss.h, usually in place so
// the logits buffer becomes dlogits) and hands dlogits to backward().
#pragma once

#include <vector>

#include "foundry/models/gpt/kv_cache.h"
#include "foundry/nn/embedding.h"
#include "foundry/nn/transformer_layer.h"

namespace foundry {

struct GPTConfig {
  // Field names follow Megatron's TransformerConfig / arguments.
  int64_t vocab_size = 256;  // 0 in a recipe: from the tokenizer (data/ setup)
  int64_t hidden_size = 64;
  int64_t num_layers = 2;
  int64_t num_attention_heads = 4;
  int64_t num_query_groups = 0;  // KV heads; 0 = num_attention_heads
  int64_t kv_channels = 0;       // head dim; 0 = hidden_size / num_attention_heads
  int64_t ffn_hidden_size = 0;   // 0 = 4 * hidden_size
  float layernorm_epsilon = 1e-5f;
  float rotary_base = 10000.f;
  float rotary_percent = 1.f;
  float init_method_std = 0.02f;
  bool share_embeddings_and_output_weights = false;
  bool bf16 = false;  // GEMM inputs in bf16, f32 accumulation, f32 master weights
};

class GPTModel {
 public:
  struct Saved {
    Embedding::Saved embedding;
    std::vector<TransformerLayer::Saved> layers;
    RMSNorm::Saved final_norm;
    Linear::Saved output;
  };

  GPTModel(const GPTConfig& cfg, uint64_t seed);
  GPTModel(const GPTModel&) = delete;  // parameters are registered by address
  GPTModel& operator=(const GPTModel&) = delete;

  const GPTConfig& config() const { return cfg_; }
  ParamTable& params() { return table_; }

  // tokens (T) i32 -> logits (T, V)
  Tensor forward(Context& ctx, const Tensor& tokens, const SequenceLayout& seq, Saved& s) const;
  // dlogits (T, V) -> parameter gradients (accumulated).
  void backward(Context& ctx, const Tensor& dlogits, const SequenceLayout& seq, const Saved& s);

  // Inference (generation, evaluation without gradients); the training path above is unchanged.
  // An empty cache for `batch` sequences of up to max_len positions.
  KVCache make_kv_cache(int64_t batch, int64_t max_len) const;
  // tokens (B, Tq) i32: the next Tq tokens of the B sequences whose first cache.length()
  // positions are in `cache` (B = cache.batch()). Appends their keys/values at positions
  // cache.length() .. + Tq - 1, advances the cache by Tq, and returns the logits of the new
  // tokens (B, Tq, V), or only of each sequence's last new token (B, 1, V) when last_only.
  // Equals forward() over the whole sequences, position by position.
  Tensor forward_inference(Context& ctx, const Tensor& tokens, KVCache& cache,
                           bool last_only = false) const;

  // Training FLOPs per token at sequence length S (forward + backward = 3x forward):
  //   6 * (parameters in matrix multiplies: attention, MLP, output layer)
  //   + 6 * L * S * NH * HD      (causal attention: QK^T and PV over S/2 keys on average)
  double training_flops_per_token(int64_t seq_length) const;

 private:
  static GPTConfig resolve(GPTConfig c);
  GPTConfig cfg_;
  Embedding embedding_;
  std::vector<TransformerLayer> layers_;
  RMSNorm final_layernorm_;
  Linear output_layer_;
  ParamTable table_;
};

}  // namespace foundry
