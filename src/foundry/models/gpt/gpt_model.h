// GPTModel: a Llama-style decoder assembled from nn/ and moe/ modules, dense or Mixture of
// Experts (Mixtral, Qwen3-MoE, DeepSeek-V3-style routing), with Megatron-Core parameter names
// (embedding.word_embeddings, decoder.layers.N.*, decoder.layers.N.mlp.{router,experts,
// shared_experts}.*, decoder.final_layernorm, output_layer):
//   x = E[tokens];  x = layer_l(x) for l < L;  logits = RMSNorm(x) W_out^T   (W_out = E if tied)
// forward() returns the logits; the caller computes the loss (cross_entropy(), in place so the
// logits buffer becomes dlogits) and hands dlogits to backward().
//
// Model parallelism (ModelParallel, Megatron-Core's parallel_state groups from comm/mesh.h):
//   tensor (tp):   vocab-parallel embedding and output layer (logits (T, V/P): this rank's vocabulary
//                  columns; cross_entropy() is the vocab-parallel one), heads split in attention,
//                  ffn split in dense MLPs; with sequence_parallel the residual stream holds this
//                  rank's T/P tokens (rank r: tokens [r T/P, (r+1) T/P)); MoE layers route their
//                  local tokens (Megatron requires SP for MoE with TP), routers and shared experts are
//                  replicated over tp with their gradients summed over tp (tp_grad_sum).
//   expert (ep, etp): each MoE layer holds E/EP experts; tokens move by the token dispatcher.
//   pipeline:      this rank holds `virtual_stages` model chunks; chunk v of pipeline rank r is global
//                  stage s = v P + r and holds layers [s L/(P V), (s+1) L/(P V)); the first stage
//                  also holds the embedding, the last the final norm and the output layer
//                  (forward_chunk / backward_chunk; train/pipeline_schedule drives them).
// Every parameter keeps its one-process name; sharded ones carry their place in the full tensor
// (nn/param.h), so the model starts equal to one process and checkpoints hold full tensors.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/models/gpt/kv_cache.h"
#include "foundry/nn/embedding.h"
#include "foundry/moe/moe_layer.h"
#include "foundry/nn/parallel_linear.h"
#include "foundry/nn/transformer_layer.h"
#include "foundry/nn/vocab_parallel.h"
#include "foundry/ops/loss.h"

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
  bool add_qkv_bias = false;  // bias on the fused QKV projection (Megatron --add-qkv-bias; Qwen2)
  float rotary_base = 10000.f;
  float rotary_percent = 1.f;
  // Llama 3 RoPE frequency scaling (Megatron --use-rope-scaling / --rope-scaling-factor; Hugging
  // Face rope_scaling {rope_type: llama3, factor, low_freq_factor, high_freq_factor,
  // original_max_position_embeddings}; ops/rope.h).
  bool use_rope_scaling = false;
  float rope_scaling_factor = 8.f;
  float rope_low_freq_factor = 1.f;
  float rope_high_freq_factor = 4.f;
  int64_t rope_original_max_position_embeddings = 8192;
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
  std::string moe_token_dispatcher_type = "alltoall";  // with expert parallelism: alltoall | allgather
  int64_t moe_shared_expert_intermediate_size = 0;
  bool moe_shared_expert_gate = false;

  // Online dense -> MoE upcycling (models/gpt/upcycle.h; train/upcycling.h): a dense checkpoint (dir,
  // root or run dir) the trainer converts into this MoE model when the run has no checkpoint yet.
  std::string upcycle_from;                    // "": none
  std::string upcycle_weight_scaling = "auto"; // auto | none | c (the factor on the expert output)
  std::string upcycle_scaling_split = "linear";  // linear | equal

  bool is_moe_layer(int64_t l) const;  // on a resolved config
};

// Defaults filled in (num_query_groups, kv_channels, ffn sizes, the MoE layer pattern) and every
// field checked, with errors naming the model.* key. With require_vocab = false a vocab_size of 0
// (taken from the tokenizer later) is accepted.
GPTConfig resolve_gpt_config(GPTConfig c, bool require_vocab = true);
// The router settings of a resolved config's MoE layers.
RouterConfig moe_router_config(const GPTConfig& c);

// Layers per global pipeline stage (P x V stages, stage v P + r = chunk v of pipeline rank r):
// L / (P V) each (Megatron's even split), or with first / last > 0 (Megatron's
// decoder_first/last_pipeline_num_layers; one virtual stage only) the first / last stage that
// many and the other stages the rest evenly. Errors name the parallel.* keys.
std::vector<int64_t> pipeline_stage_layers(int64_t num_layers, int pp, int vpp, int64_t first = 0, int64_t last = 0);

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

// The process groups a model is split over; every pointer outlives the model, null = not split.
struct ModelParallel {
  Communicator* tp = nullptr;       // tensor parallel (attention, dense MLP, embedding, output layer)
  bool sequence_parallel = false;   // with tp
  Communicator* ep = nullptr;       // expert parallel
  Communicator* etp = nullptr;      // expert tensor parallel
  std::string moe_token_dispatcher_type;  // "": the config's model.moe_token_dispatcher_type
  int pp_rank = 0, pp_size = 1;     // pipeline stage of this rank
  int virtual_stages = 1;           // model chunks per pipeline rank (interleaved schedule)
  int64_t first_stage_layers = 0;   // uneven stages (pipeline_stage_layers); 0: even split
  int64_t last_stage_layers = 0;
  // Reductions of a training step (train_step): dense gradients and losses over dp (Megatron's
  // dp_cp group), expert gradients over expt_dp, expert-bias token counts over tp_dp_cp, the
  // gradient norm and the pipeline's loss over `all` (every rank of the model: the world).
  Communicator* dp = nullptr;
  Communicator* expt_dp = nullptr;
  Communicator* tp_dp_cp = nullptr;
  Communicator* pp = nullptr;
  Communicator* all = nullptr;
  // The first and last pipeline stage of this rank's position (Megatron's embedding group): with
  // tied embeddings both hold the word embedding and sum its gradient over it. Null elsewhere.
  Communicator* embd = nullptr;

  int tp_size() const { return tp ? tp->size() : 1; }
  int ep_size() const { return ep ? ep->size() : 1; }
  bool splits_model() const { return tp_size() > 1 || ep_size() > 1 || (etp && etp->size() > 1) || pp_size > 1; }
};

class GPTModel {
 public:
  struct Saved {
    int chunk = 0;  // the model chunk that filled it (pipeline parallelism)
    Embedding::Saved embedding;
    VocabParallelEmbedding::Saved vp_embedding;
    std::vector<TransformerLayer::Saved> layers;  // the chunk's layers
    RMSNorm::Saved final_norm;
    Linear::Saved output;
  };

  GPTModel(const GPTConfig& cfg, uint64_t seed, const ModelParallel& mp = {});
  GPTModel(const GPTModel&) = delete;  // parameters are registered by address
  GPTModel& operator=(const GPTModel&) = delete;

  const GPTConfig& config() const { return cfg_; }
  const ModelParallel& parallel() const { return mp_; }
  ParamTable& params() { return table_; }
  const ParamTable& params() const { return table_; }

  // tokens (T) i32 -> logits (T, V), or (T, V/P) with tensor parallelism (this rank's vocabulary
  // columns [vocab_start(), + V/P)). Parameters are not changed; a training-mode forward updates
  // the MoE routers' token counters (for the expert-bias update and global_aux_loss). The whole
  // model: not with pipeline parallelism.
  Tensor forward(Context& ctx, const Tensor& tokens, const SequenceLayout& seq, Saved& s) const;
  // dlogits shaped as the logits -> parameter gradients (accumulated); MoE auxiliary-loss
  // gradients enter scaled by ctx.aux_loss_scale.
  void backward(Context& ctx, const Tensor& dlogits, const SequenceLayout& seq, const Saved& s);

  // Pipeline parallelism: this rank's model chunks. forward_chunk(v): input = tokens (T) i32 on the
  // first stage, else the previous stage's activation (T, H) ((T/P, H) with SP); returns the
  // activation, or the logits on the last stage. backward_chunk(v): dout = the gradient of that
  // output (dlogits on the last stage); returns the input's gradient (undefined on the first stage).
  int num_chunks() const { return static_cast<int>(chunks_.size()); }
  bool is_first_stage(int chunk) const { return chunks_[static_cast<size_t>(chunk)].first; }
  bool is_last_stage(int chunk) const { return chunks_[static_cast<size_t>(chunk)].last; }
  Tensor forward_chunk(Context& ctx, int chunk, const Tensor& input, const SequenceLayout& seq, Saved& s) const;
  Tensor backward_chunk(Context& ctx, int chunk, const Tensor& dout, const SequenceLayout& seq, const Saved& s);

  // The mean cross-entropy of logits from forward() (or the last stage's forward_chunk) against
  // the full-vocabulary targets (T), over token_count tokens (0: the valid targets), the same on
  // every tp rank; with write_dlogits the logits buffer becomes dlogits in place.
  CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& targets, double token_count,
                                   bool write_dlogits) const;
  int64_t vocab_start() const { return vocab_start_; }  // of this rank's logits' columns
  // Tied embeddings split over pipeline stages (Megatron's shared embedding): the last stage holds
  // a copy of the word embedding under the same name (same initial value, same checkpoint
  // tensor) whose gradient is summed with the first stage's over the embd group. The index of
  // this rank's word-embedding parameter (either one), or -1; and whether it is the last stage's copy.
  int shared_embedding_param() const { return shared_embedding_param_; }
  bool holds_shared_embedding_copy() const { return shared_embedding_copy_; }

  // Called by backward / backward_chunk with the parameter index range [begin, end) of each module
  // whose gradients it has just finished (the output head, each layer from the last, the
  // embedding): the data-parallel gradient buckets start reducing them while the backward goes on
  // (optim/grad_buckets.h). Empty: none.
  using GradReadyHook = std::function<void(int begin, int end)>;
  void set_grad_ready_hook(GradReadyHook hook) { grad_ready_ = std::move(hook); }

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

  // This rank's MoE layers (decoder layer index, layer); empty for a dense model.
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
  struct Chunk {
    size_t begin = 0, end = 0;  // layers_[begin, end)
    bool first = false, last = false;
  };
  GPTConfig cfg_;
  ModelParallel mp_;
  Embedding embedding_;
  std::optional<VocabParallelEmbedding> vp_embedding_;  // tensor parallelism
  std::vector<TransformerLayer> layers_;                // this rank's layers, chunk after chunk
  std::vector<int64_t> layer_ids_;                      // their decoder layer indices
  std::vector<Chunk> chunks_;
  RMSNorm final_layernorm_;
  Linear output_layer_;
  std::optional<ColumnParallelLinear> vp_output_;  // tensor parallelism
  ParamTable table_;
  std::vector<std::pair<int64_t, MoELayer*>> moe_layers_;
  std::vector<size_t> moe_local_;  // moe_layers_[i]'s index in layers_
  int64_t vocab_start_ = 0;
  int shared_embedding_param_ = -1;
  GradReadyHook grad_ready_;
  std::pair<int, int> embedding_params_{0, 0}, head_params_{0, 0};  // index ranges
  std::vector<std::pair<int, int>> layer_params_;                   // per layers_ entry
  bool shared_embedding_copy_ = false;
  bool has_embedding() const { return chunks_.front().first; }
  bool has_head() const { return chunks_.back().last; }
};

}  // namespace foundry
