// GPTModel: a Llama-style decoder assembled from nn/ and moe/ modules, dense or Mixture of
// Experts (Mixtral, Qwen3-MoE, DeepSeek-V3-style routing), with Megatron-Core parameter names
// (embedding.word_embeddings, decoder.layers.N.*, decoder.layers.N.mlp.{router,experts,
// shared_experts}.*, decoder.final_layernorm, output_layer):
//   x = E[tokens];  x = layer_l(x) for l < L;  logits = RMSNorm(x) W_out^T   (W_out = E if tied)
// forward() returns the logits; the caller computes the loss (ops/loss.h, usually in place so
// the logits buffer becomes dlogits) and hands dlogits to backward().
#pragma once

#include <string>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/models/gpt/kv_cache.h"
#include "foundry/nn/embedding.h"
#include "foundry/moe/moe_layer.h"
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
  bool qk_layernorm = false;  // RMSNorm over each q and k head before RoPE (Qwen3 q_norm / k_norm)
  float rotary_base = 10000.f;
  float rotary_percent = 1.f;
  float init_method_std = 0.02f;
  bool share_embeddings_and_output_weights = false;
  bool bf16 = false;  // GEMM inputs in bf16, f32 accumulation, f32 master weights (MoE routers stay f32)

  // Mixture of Experts (Megatron's --num-experts / --moe-* arguments; moe/router.h).
  int64_t num_moe_experts = 0;              // 0: every layer dense
  int64_t moe_layer_freq = 1;               // layer l is MoE iff l % moe_layer_freq == 0
  std::vector<int64_t> moe_layer_pattern;   // one 0/1 per layer (Megatron's list form); overrides the freq
  int64_t moe_ffn_hidden_size = 0;          // 0: ffn_hidden_size
  int64_t moe_router_topk = 2;
  std::string moe_router_score_function = "softmax";  // softmax | sigmoid | sqrtsoftplus
  bool moe_router_pre_softmax = false;
  int64_t moe_router_num_groups = 0;
  int64_t moe_router_group_topk = 0;
  float moe_router_topk_scaling_factor = 0.f;  // 0: none
  bool moe_router_enable_expert_bias = false;
  float moe_router_bias_update_rate = 1e-3f;
  std::vector<std::string> moe_router_load_balancing_type = {"aux_loss"};
  std::vector<float> moe_aux_loss_coeff = {0.f};
  float moe_z_loss_coeff = 0.f;
  float moe_input_jitter_eps = 0.f;         // 0: none (training forwards only)
  float moe_expert_capacity_factor = 0.f;   // 0: dropless
  std::string moe_token_drop_policy = "probs";
  bool moe_pad_expert_input_to_capacity = false;
  int64_t moe_shared_expert_intermediate_size = 0;
  bool moe_shared_expert_gate = false;

  bool is_moe_layer(int64_t l) const;  // on a resolved config
};

// Defaults filled in (num_query_groups, kv_channels, ffn sizes, the MoE layer pattern) and every
// field checked, with errors naming the model.* key. With require_vocab = false a vocab_size of 0
// (taken from the tokenizer later) is accepted.
GPTConfig resolve_gpt_config(GPTConfig c, bool require_vocab = true);
// The router settings of a resolved config's MoE layers.
RouterConfig moe_router_config(const GPTConfig& c);

// Parameter counts of a resolved config, without building the model: every parameter, and those
// one token uses (MoE layers: the router, topk routed experts and the shared experts). Equal to
// GPTModel::params().numel() for `total`.
struct ParameterCount {
  int64_t total = 0;
  int64_t active = 0;
};
ParameterCount count_parameters(const GPTConfig& resolved);

// Routing statistics of one MoE layer's forward (GPTModel::moe_stats).
struct MoELayerStats {
  int64_t layer = 0;                       // decoder layer index
  std::vector<int64_t> tokens_per_expert;  // rows per expert after dropping / padding
  int64_t routed = 0;                      // token-expert selections (T * topk)
  int64_t dropped = 0;                     // of which dropped by the capacity
  double aux_loss = 0;                     // load-balancing losses, coefficients included
  double z_loss = 0;                       // coefficient included
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

  // tokens (T) i32 -> logits (T, V). Parameters are not changed; a training-mode forward updates
  // the MoE routers' token counters (for the expert-bias update and global_aux_loss).
  Tensor forward(Context& ctx, const Tensor& tokens, const SequenceLayout& seq, Saved& s) const;
  // dlogits (T, V) -> parameter gradients (accumulated); MoE auxiliary-loss gradients enter scaled
  // by ctx.aux_loss_scale.
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

  // Training FLOPs per token at sequence length S (forward + backward = 3x forward), counting
  // only the parameters a token uses (MoE: topk routed experts + shared experts; Megatron's
  // num_floating_point_operations, which leaves out the router):
  //   6 * (active parameters in matrix multiplies: attention, MLP / experts, output layer)
  //   + 6 * L * S * NH * HD      (causal attention: QK^T and PV over S/2 keys on average)
  double training_flops_per_token(int64_t seq_length) const;

  // MoE layers (decoder layer index, layer); empty for a dense model.
  const std::vector<std::pair<int64_t, MoELayer*>>& moe_layers() const { return moe_layers_; }
  // Per MoE layer, the routing statistics of the forward that filled `s`.
  std::vector<MoELayerStats> moe_stats(const Saved& s) const;
  // Sum of the MoE auxiliary losses (load balancing + z, coefficients included) of that forward.
  double moe_aux_loss(const Saved& s) const;
  // Once per global batch, before its first forward: clears the global_aux_loss counts.
  void begin_global_batch();
  // Once per optimizer step, after the last backward: the aux-loss-free expert-bias update from
  // the step's token counts (Megatron's _update_router_expert_bias), summed over `dp` (the
  // tp_dp_cp group) when given, if `applied`; the counts are cleared either way.
  void finish_optimizer_step(bool applied, Communicator* dp = nullptr);

 private:
  GPTConfig cfg_;
  Embedding embedding_;
  std::vector<TransformerLayer> layers_;
  RMSNorm final_layernorm_;
  Linear output_layer_;
  ParamTable table_;
  std::vector<std::pair<int64_t, MoELayer*>> moe_layers_;
};

}  // namespace foundry
