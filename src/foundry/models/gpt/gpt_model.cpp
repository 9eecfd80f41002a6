#include "foundry/models/gpt/gpt_model.h"

#include <cmath>

namespace foundry {

bool GPTConfig::is_moe_layer(int64_t l) const {
  if (num_moe_experts == 0) return false;
  if (!moe_layer_pattern.empty()) return moe_layer_pattern[static_cast<size_t>(l)] != 0;
  return l % moe_layer_freq == 0;
}

GPTConfig resolve_gpt_config(GPTConfig c, bool require_vocab) {
  FOUNDRY_CHECK(c.vocab_size > 0 || (!require_vocab && c.vocab_size == 0),
                "model.vocab_size must be positive, got {}", c.vocab_size);
  FOUNDRY_CHECK(c.hidden_size > 0, "model.hidden_size must be positive, got {}", c.hidden_size);
  FOUNDRY_CHECK(c.num_layers > 0, "model.num_layers must be positive, got {}", c.num_layers);
  FOUNDRY_CHECK(c.num_attention_heads > 0, "model.num_attention_heads must be positive, got {}",
                c.num_attention_heads);
  if (c.num_query_groups == 0) c.num_query_groups = c.num_attention_heads;
  FOUNDRY_CHECK(c.num_query_groups > 0 && c.num_attention_heads % c.num_query_groups == 0,
                "model.num_attention_heads {} is not a multiple of model.num_query_groups {}",
                c.num_attention_heads, c.num_query_groups);
  if (c.kv_channels == 0) {
    FOUNDRY_CHECK(c.hidden_size % c.num_attention_heads == 0,
                  "model.hidden_size {} is not divisible by model.num_attention_heads {} (set model.kv_channels)",
                  c.hidden_size, c.num_attention_heads);
    c.kv_channels = c.hidden_size / c.num_attention_heads;
  }
  if (c.ffn_hidden_size == 0) c.ffn_hidden_size = 4 * c.hidden_size;
  if (c.use_rope_scaling) {  // Llama 3 bands (ops/rope.h)
    FOUNDRY_CHECK(c.rope_scaling_factor > 0 && std::isfinite(c.rope_scaling_factor),
                  "model.rope_scaling_factor must be > 0, got {}", c.rope_scaling_factor);
    FOUNDRY_CHECK(c.rope_low_freq_factor > 0, "model.rope_low_freq_factor must be > 0, got {}",
                  c.rope_low_freq_factor);
    FOUNDRY_CHECK(c.rope_high_freq_factor > c.rope_low_freq_factor && std::isfinite(c.rope_high_freq_factor),
                  "model.rope_high_freq_factor ({}) must be greater than model.rope_low_freq_factor ({})",
                  c.rope_high_freq_factor, c.rope_low_freq_factor);
    FOUNDRY_CHECK(c.rope_original_max_position_embeddings > 0,
                  "model.rope_original_max_position_embeddings must be positive, got {}",
                  c.rope_original_max_position_embeddings);
  }
  FOUNDRY_CHECK(c.num_moe_experts >= 0, "model.num_moe_experts must be >= 0, got {}", c.num_moe_experts);
  if (c.num_moe_experts == 0) return c;
  if (c.moe_ffn_hidden_size == 0) c.moe_ffn_hidden_size = c.ffn_hidden_size;
  FOUNDRY_CHECK(c.moe_ffn_hidden_size > 0, "model.moe_ffn_hidden_size must be positive, got {}", c.moe_ffn_hidden_size);
  FOUNDRY_CHECK(c.moe_layer_freq > 0, "model.moe_layer_freq must be positive, got {}", c.moe_layer_freq);
  if (!c.moe_layer_pattern.empty()) {
    FOUNDRY_CHECK(static_cast<int64_t>(c.moe_layer_pattern.size()) == c.num_layers,
                  "model.moe_layer_freq: the pattern has {} entries, model.num_layers is {}", c.moe_layer_pattern.size(),
                  c.num_layers);
    for (int64_t v : c.moe_layer_pattern)
      FOUNDRY_CHECK(v == 0 || v == 1, "model.moe_layer_freq: pattern entries must be 0 (dense) or 1 (MoE), got {}", v);
  }
  FOUNDRY_CHECK(c.moe_token_dispatcher_type == "alltoall" || c.moe_token_dispatcher_type == "allgather",
                "model.moe_token_dispatcher_type must be alltoall or allgather, got '{}'", c.moe_token_dispatcher_type);
  FOUNDRY_CHECK(c.moe_shared_expert_intermediate_size >= 0,
                "model.moe_shared_expert_intermediate_size must be >= 0, got {}", c.moe_shared_expert_intermediate_size);
  FOUNDRY_CHECK(!c.moe_shared_expert_gate || c.moe_shared_expert_intermediate_size > 0,
                "model.moe_shared_expert_gate needs model.moe_shared_expert_intermediate_size > 0");
  RouterConfig router = moe_router_config(c);
  try {
    router.validate();
  } catch (const Error& e) {
    FOUNDRY_FAIL("model: MoE router settings: {}", e.what());
  }
  return c;
}

ParameterCount count_parameters(const GPTConfig& c) {
  const int64_t H = c.hidden_size, V = c.vocab_size;
  const int64_t qkv_rows = (c.num_attention_heads + 2 * c.num_query_groups) * c.kv_channels;
  const int64_t attention = H * qkv_rows + (c.add_qkv_bias ? qkv_rows : 0) + c.num_attention_heads * c.kv_channels * H;
  const int64_t norms = 2 * H + (c.qk_layernorm ? 2 * c.kv_channels : 0);  // input, pre_mlp (, q, k) norms
  const int64_t expert = 3 * H * c.moe_ffn_hidden_size;  // fc1 (2F, H) + fc2 (H, F)
  const int64_t shared = 3 * H * c.moe_shared_expert_intermediate_size + (c.moe_shared_expert_gate ? H : 0);
  const int64_t router = c.num_moe_experts * H;
  ParameterCount n;
  n.total = n.active = V * H + H + (c.share_embeddings_and_output_weights ? 0 : V * H);  // embedding, final norm, head
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t common = attention + norms;
    if (c.is_moe_layer(l)) {
      n.total += common + router + c.num_moe_experts * expert + shared;
      n.active += common + router + c.moe_router_topk * expert + shared;
    } else {
      n.total += common + 3 * H * c.ffn_hidden_size;
      n.active += common + 3 * H * c.ffn_hidden_size;
    }
  }
  return n;
}

RouterConfig moe_router_config(const GPTConfig& c) {
  return {.hidden = c.hidden_size, .num_experts = c.num_moe_experts, .topk = c.moe_router_topk,
          .score_function = c.moe_router_score_function, .pre_softmax = c.moe_router_pre_softmax,
          .num_groups = c.moe_router_num_groups, .group_topk = c.moe_router_group_topk,
          .topk_scaling_factor = c.moe_router_topk_scaling_factor,
          .enable_expert_bias = c.moe_router_enable_expert_bias,
          .bias_update_rate = c.moe_router_bias_update_rate,
          .load_balancing_type = c.moe_router_load_balancing_type, .aux_loss_coeff = c.moe_aux_loss_coeff,
          .z_loss_coeff = c.moe_z_loss_coeff, .input_jitter_eps = c.moe_input_jitter_eps,
          .capacity_factor = c.moe_expert_capacity_factor,
          .drop_policy = c.moe_token_drop_policy, .pad_to_capacity = c.moe_pad_expert_input_to_capacity,
          .init = Init::normal(c.init_method_std)};
}

namespace {
// Megatron's pipeline layout: chunk v of pipeline rank r is global stage v P + r of P V stages,
// each holding L / (P V) consecutive layers.
struct StageLayout {
  int64_t begin, end;
  bool first, last;
};
StageLayout stage_layers(const GPTConfig& c, const ModelParallel& mp, int chunk) {
  const std::vector<int64_t> n =
      pipeline_stage_layers(c.num_layers, mp.pp_size, mp.virtual_stages, mp.first_stage_layers, mp.last_stage_layers);
  const size_t s = static_cast<size_t>(chunk) * static_cast<size_t>(mp.pp_size) + static_cast<size_t>(mp.pp_rank);
  int64_t begin = 0;
  for (size_t i = 0; i < s; ++i) begin += n[i];
  return {begin, begin + n[s], s == 0, s + 1 == n.size()};
}
}  // namespace

std::vector<int64_t> pipeline_stage_layers(int64_t L, int pp, int vpp, int64_t first, int64_t last) {
  const int64_t stages = static_cast<int64_t>(pp) * vpp;
  if (first == 0 && last == 0) {
    FOUNDRY_CHECK(L % stages == 0,
                  "model.num_layers ({}) is not divisible by parallel.pipeline_model_parallel_size ({}) x "
                  "parallel.virtual_pipeline_model_parallel_size ({}) (layers are split evenly; "
                  "parallel.decoder_first/last_pipeline_num_layers make the first / last stage uneven)",
                  L, pp, vpp);
    return std::vector<int64_t>(static_cast<size_t>(stages), L / stages);
  }
  FOUNDRY_CHECK(vpp == 1, "parallel.decoder_first/last_pipeline_num_layers with virtual pipeline stages are not "
                "supported yet (set parallel.virtual_pipeline_model_parallel_size to 0)");
  FOUNDRY_CHECK(first >= 0 && last >= 0, "parallel.decoder_first/last_pipeline_num_layers must be >= 0");
  FOUNDRY_CHECK(pp > 1, "parallel.decoder_first/last_pipeline_num_layers need pipeline_model_parallel_size > 1");
  const int64_t middle = pp - (first > 0) - (last > 0), rest = L - first - last;
  FOUNDRY_CHECK(rest >= 0 && (middle == 0 ? rest == 0 : rest % middle == 0 && rest / middle > 0),
                "model.num_layers ({}) minus parallel.decoder_first_pipeline_num_layers ({}) and "
                "decoder_last_pipeline_num_layers ({}) leaves {} layers, which do not split evenly over the other "
                "{} pipeline stages", L, first, last, rest, middle);
  std::vector<int64_t> n(static_cast<size_t>(pp), middle > 0 ? rest / middle : 0);
  if (first > 0) n.front() = first;
  if (last > 0) n.back() = last;
  return n;
}

GPTModel::GPTModel(const GPTConfig& config, uint64_t seed, const ModelParallel& mp)
    : cfg_(resolve_gpt_config(config)),
      mp_(mp),
      embedding_({.vocab = cfg_.vocab_size, .hidden = cfg_.hidden_size,
                  .init = Init::normal(cfg_.init_method_std)}),
      final_layernorm_({.hidden = cfg_.hidden_size, .eps = cfg_.layernorm_epsilon}),
      output_layer_({.in = cfg_.hidden_size, .out = cfg_.vocab_size,
                     .init = Init::normal(cfg_.init_method_std),
                     .compute = cfg_.bf16 ? DType::bf16 : DType::f32, .tp_split_axis = 0}) {
  FOUNDRY_CHECK(mp_.pp_size >= 1 && mp_.pp_rank >= 0 && mp_.pp_rank < mp_.pp_size && mp_.virtual_stages >= 1,
                "GPTModel: pipeline rank {} of {} with {} virtual stages is not a valid layout", mp_.pp_rank,
                mp_.pp_size, mp_.virtual_stages);
  FOUNDRY_CHECK(mp_.tp || !mp_.sequence_parallel, "parallel.sequence_parallel needs tensor_model_parallel_size > 1");
  const DType compute = cfg_.bf16 ? DType::bf16 : DType::f32;
  const bool tp = mp_.tp_size() > 1, sp = tp && mp_.sequence_parallel;
  Communicator* tp_group = tp ? mp_.tp : nullptr;
  FOUNDRY_CHECK(!tp || cfg_.num_moe_experts == 0 || sp,
                "MoE with tensor_model_parallel_size > 1 needs parallel.sequence_parallel (as Megatron-Core)");
  // Megatron's scaled init for the layers' output projections: std / sqrt(2 L).
  const float output_std = cfg_.init_method_std / std::sqrt(2.f * static_cast<float>(cfg_.num_layers));
  const TransformerLayer::Config layer{
      .attention = {.hidden = cfg_.hidden_size, .num_heads = cfg_.num_attention_heads,
                    .num_kv_heads = cfg_.num_query_groups, .head_dim = cfg_.kv_channels,
                    .rope_theta = cfg_.rotary_base, .rotary_percent = cfg_.rotary_percent,
                    .compute = compute, .init_std = cfg_.init_method_std,
                    .output_init_std = output_std, .qk_layernorm = cfg_.qk_layernorm,
                    .qk_layernorm_eps = cfg_.layernorm_epsilon, .add_qkv_bias = cfg_.add_qkv_bias,
                    .rope_scaling = {.enabled = cfg_.use_rope_scaling, .factor = cfg_.rope_scaling_factor,
                                     .low_freq_factor = cfg_.rope_low_freq_factor,
                                     .high_freq_factor = cfg_.rope_high_freq_factor,
                                     .original_max_position_embeddings = cfg_.rope_original_max_position_embeddings}},
      .mlp = {.hidden = cfg_.hidden_size, .ffn = cfg_.ffn_hidden_size, .compute = compute,
              .init_std = cfg_.init_method_std, .output_init_std = output_std},
      .norm_eps = cfg_.layernorm_epsilon,
      .tp = tp_group,
      .sequence_parallel = sp};
  for (int v = 0; v < mp_.virtual_stages; ++v) {
    const StageLayout st = stage_layers(cfg_, mp_, v);
    chunks_.push_back({layer_ids_.size(), layer_ids_.size() + static_cast<size_t>(st.end - st.begin), st.first, st.last});
    for (int64_t l = st.begin; l < st.end; ++l) layer_ids_.push_back(l);
  }
  layers_.reserve(layer_ids_.size());
  for (const int64_t l : layer_ids_) {
    if (!cfg_.is_moe_layer(l)) {
      layers_.emplace_back(layer);
      continue;
    }
    RouterConfig router = moe_router_config(cfg_);
    router.tp_cp = sp ? tp_group : nullptr;  // this rank routes its T/P tokens
    router.tp_dp_cp = mp_.tp_dp_cp;
    auto moe = std::make_unique<MoELayer>(MoELayer::Config{
        .router = router, .moe_ffn_hidden_size = cfg_.moe_ffn_hidden_size,
        .shared_expert_ffn = cfg_.moe_shared_expert_intermediate_size,
        .shared_expert_gate = cfg_.moe_shared_expert_gate, .compute = compute, .init_std = cfg_.init_method_std,
        .output_init_std = output_std, .ep = mp_.ep_size() > 1 ? mp_.ep : nullptr,
        .etp = mp_.etp && mp_.etp->size() > 1 ? mp_.etp : nullptr,
        .token_dispatcher_type = mp_.moe_token_dispatcher_type.empty() ? cfg_.moe_token_dispatcher_type
                                                                       : mp_.moe_token_dispatcher_type});
    moe_layers_.emplace_back(l, moe.get());
    moe_local_.push_back(layers_.size());
    layers_.emplace_back(layer, std::move(moe));
  }
  if (tp) {
    if (has_embedding())
      vp_embedding_.emplace(VocabParallelEmbedding::Config{.vocab = cfg_.vocab_size, .hidden = cfg_.hidden_size,
                                                           .init = Init::normal(cfg_.init_method_std),
                                                           .sequence_parallel = sp},
                            *tp_group);
    if (has_head())
      vp_output_.emplace(ColumnParallelLinear::Config{.in = cfg_.hidden_size, .out = cfg_.vocab_size,
                                                      .init = Init::normal(cfg_.init_method_std), .compute = compute,
                                                      .sequence_parallel = sp},
                         *tp_group);
    vocab_start_ = static_cast<int64_t>(tp_group->rank()) * (cfg_.vocab_size / tp_group->size());
  }

  if (has_embedding()) {
    if (vp_embedding_) vp_embedding_->register_params(table_, "embedding.word_embeddings");
    else embedding_.register_params(table_, "embedding.word_embeddings");
  }
  embedding_params_ = {0, table_.size()};
  for (size_t i = 0; i < layers_.size(); ++i) {
    const int begin = table_.size();
    layers_[i].register_params(table_, "decoder.layers." + std::to_string(layer_ids_[i]));
    layer_params_.emplace_back(begin, table_.size());
  }
  head_params_.first = table_.size();
  if (has_head()) {
    final_layernorm_.register_params(table_, "decoder.final_layernorm");
    if (sp) table_.edit_spec(final_layernorm_.weight.index).tp_grad_sum = true;  // this rank's tokens only
    if (!cfg_.share_embeddings_and_output_weights) {
      if (vp_output_) vp_output_->register_params(table_, "output_layer");
      else output_layer_.register_params(table_, "output_layer");
    } else if (!has_embedding()) {  // the last stage's copy of the shared word embedding
      if (vp_output_) vp_output_->register_params(table_, "embedding.word_embeddings");
      else output_layer_.register_params(table_, "embedding.word_embeddings");
      shared_embedding_copy_ = true;
      shared_embedding_param_ = table_.size() - 1;
    }
  }
  head_params_.second = table_.size();
  if (cfg_.share_embeddings_and_output_weights && has_embedding())
    shared_embedding_param_ = vp_embedding_ ? vp_embedding_->weight.index : embedding_.weight.index;
  if (sp) {  // shared experts: replicated over tp, each rank runs its own tokens (routers mark themselves)
    for (int i = 0; i < table_.size(); ++i)
      if (table_.spec(i).name.find(".mlp.shared_experts.") != std::string::npos) table_.edit_spec(i).tp_grad_sum = true;
  }
  table_.allocate(seed);
  // Tied head: the output layer reads the embedding's value and accumulates into its gradient.
  if (cfg_.share_embeddings_and_output_weights && has_embedding() && has_head()) {
    if (vp_output_) vp_output_->local.weight = vp_embedding_->weight;
    else output_layer_.weight = embedding_.weight;
  }
}

Tensor GPTModel::forward_chunk(Context& ctx, int v, const Tensor& input, const SequenceLayout& seq, Saved& s) const {
  FOUNDRY_CHECK(v >= 0 && v < num_chunks(), "GPTModel::forward_chunk: chunk {} of {}", v, num_chunks());
  const Chunk& c = chunks_[static_cast<size_t>(v)];
  s.chunk = v;
  s.layers.resize(c.end - c.begin);
  Tensor x = !c.first ? input
             : vp_embedding_ ? vp_embedding_->forward(ctx, input, s.vp_embedding)  // (T, H) or (T/P, H)
                             : embedding_.forward(ctx, input, s.embedding);        // (T, H)
  for (size_t l = c.begin; l < c.end; ++l) x = layers_[l].forward(ctx, x, seq, s.layers[l - c.begin]);
  if (!c.last) return x;
  const Tensor n = final_layernorm_.forward(ctx, x, s.final_norm);
  return vp_output_ ? vp_output_->forward(ctx, n, s.output) : output_layer_.forward(ctx, n, s.output);  // (T, V[/P])
}

Tensor GPTModel::backward_chunk(Context& ctx, int v, const Tensor& dout, const SequenceLayout& seq, const Saved& s) {
  FOUNDRY_CHECK(v >= 0 && v < num_chunks() && s.chunk == v,
                "GPTModel::backward_chunk: chunk {} of {} (saved state of chunk {})", v, num_chunks(), s.chunk);
  const Chunk& c = chunks_[static_cast<size_t>(v)];
  Tensor dx = dout;
  if (c.last) {
    Tensor dnorm = vp_output_ ? vp_output_->backward(ctx, dout, s.output) : output_layer_.backward(ctx, dout, s.output);
    dx = Tensor::zeros(dnorm.shape(), DType::f32, dnorm.device());
    final_layernorm_.backward(ctx, dnorm, s.final_norm, dx);
    if (grad_ready_) grad_ready_(head_params_.first, head_params_.second);
  }
  for (size_t l = c.end; l-- > c.begin;) {
    dx = layers_[l].backward(ctx, dx, seq, s.layers[l - c.begin]);
    if (grad_ready_) grad_ready_(layer_params_[l].first, layer_params_[l].second);
  }
  if (!c.first) return dx;
  if (vp_embedding_) vp_embedding_->backward(ctx, dx, s.vp_embedding);
  else embedding_.backward(ctx, dx, s.embedding);
  if (grad_ready_) grad_ready_(embedding_params_.first, embedding_params_.second);  // after its last use (tied head)
  return Tensor();
}

Tensor GPTModel::forward(Context& ctx, const Tensor& tokens, const SequenceLayout& seq, Saved& s) const {
  FOUNDRY_CHECK(num_chunks() == 1 && is_first_stage(0) && is_last_stage(0),
                "GPTModel::forward: the model is split over pipeline stages; use forward_chunk");
  return forward_chunk(ctx, 0, tokens, seq, s);
}

void GPTModel::backward(Context& ctx, const Tensor& dlogits, const SequenceLayout& seq, const Saved& s) {
  backward_chunk(ctx, 0, dlogits, seq, s);
}

CrossEntropyResult GPTModel::cross_entropy(const Tensor& logits, const Tensor& targets, double token_count,
                                           bool write_dlogits) const {
  if (vp_output_)
    return vocab_parallel_cross_entropy(*mp_.tp, {.logits = logits, .targets = targets, .vocab_start = vocab_start_,
                                                  .token_count = token_count,
                                                  .dlogits = write_dlogits ? logits.view() : TensorView{}});
  return cross_entropy_fused({.logits = logits, .targets = targets, .token_count = token_count,
                              .dlogits = write_dlogits ? logits.view() : TensorView{}});
}

KVCache GPTModel::make_kv_cache(int64_t batch, int64_t max_len) const {
  return KVCache(cfg_.num_layers, batch, max_len, cfg_.num_query_groups, cfg_.kv_channels);
}

Tensor GPTModel::forward_inference(Context& train_ctx, const Tensor& tokens, KVCache& cache,
                                   bool last_only) const {
  FOUNDRY_CHECK(!mp_.splits_model(), "GPTModel::forward_inference: generation with a model split over tensor, "
                "expert or pipeline ranks is not supported; load the checkpoint in one process");
  Context ctx = train_ctx;  // inference: no MoE router statistics or auxiliary losses
  ctx.training = false;
  FOUNDRY_CHECK(tokens.ndim() == 2 && tokens.dtype() == DType::i32,
                "GPTModel::forward_inference: tokens must be i32 (B, Tq), got {}", tokens.str());
  const int64_t B = tokens.size(0), Tq = tokens.size(1), past = cache.length();
  FOUNDRY_CHECK(B == cache.batch() && cache.num_layers() == cfg_.num_layers,
                "GPTModel::forward_inference: tokens {} do not fit a cache of batch {} and {} layers "
                "(model: {} layers)",
                tokens.str(), cache.batch(), cache.num_layers(), cfg_.num_layers);
  FOUNDRY_CHECK(Tq >= 1 && past + Tq <= cache.max_len(),
                "GPTModel::forward_inference: {} cached + {} new positions exceed the cache's max_len {}",
                past, Tq, cache.max_len());
  Embedding::Saved emb_unused;
  Tensor x = embedding_.forward(ctx, tokens.reshape({B * Tq}), emb_unused);  // (B Tq, H)
  for (size_t l = 0; l < layers_.size(); ++l)
    x = layers_[l].forward_inference(ctx, x, B, past, cache.k(static_cast<int64_t>(l)),
                                     cache.v(static_cast<int64_t>(l)));
  cache.advance(Tq);
  const int64_t rows = last_only ? 1 : Tq;
  if (last_only && Tq > 1) {  // keep each sequence's last token: rows b Tq + Tq - 1
    Tensor last = Tensor::empty({B, cfg_.hidden_size}, DType::f32, x.device());
    for (int64_t b = 0; b < B; ++b)
      last.slice(b, b + 1).copy_from(x.slice(b * Tq + Tq - 1, b * Tq + Tq));
    x = last;
  }
  RMSNorm::Saved norm_unused;
  Linear::Saved out_unused;
  Tensor logits = output_layer_.forward(ctx, final_layernorm_.forward(ctx, x, norm_unused), out_unused);
  return logits.reshape({B, rows, cfg_.vocab_size});  // (B, rows, V)
}

double GPTModel::training_flops_per_token(int64_t seq_length) const {
  const double H = static_cast<double>(cfg_.hidden_size), V = static_cast<double>(cfg_.vocab_size);
  const double NH = static_cast<double>(cfg_.num_attention_heads);
  const double NKV = static_cast<double>(cfg_.num_query_groups);
  const double HD = static_cast<double>(cfg_.kv_channels), S = static_cast<double>(seq_length);
  const double L = static_cast<double>(cfg_.num_layers);
  // SwiGLU: fc1 (2F, H) + fc2 (H, F) = 3 H F per token.
  const double dense_mlp = 3 * H * static_cast<double>(cfg_.ffn_hidden_size);
  const double moe_mlp = 3 * H * (static_cast<double>(cfg_.moe_router_topk * cfg_.moe_ffn_hidden_size) +
                                  static_cast<double>(cfg_.moe_shared_expert_intermediate_size));
  double matmul_params = V * H;
  for (int64_t l = 0; l < cfg_.num_layers; ++l)
    matmul_params += H * (NH + 2 * NKV) * HD + NH * HD * H + (cfg_.is_moe_layer(l) ? moe_mlp : dense_mlp);
  return 6.0 * matmul_params + 6.0 * L * S * NH * HD;
}

std::vector<MoELayerStats> GPTModel::moe_stats(const Saved& s) const {
  std::vector<MoELayerStats> out;
  const Chunk& c = chunks_.at(static_cast<size_t>(s.chunk));
  for (size_t i = 0; i < moe_layers_.size(); ++i) {
    const auto& [l, moe] = moe_layers_[i];
    if (moe_local_[i] < c.begin || moe_local_[i] >= c.end) continue;  // another chunk's layer
    const auto* st = dynamic_cast<const MoELayer::Saved*>(s.layers.at(moe_local_[i] - c.begin).mlp.get());
    FOUNDRY_CHECK(st != nullptr, "GPTModel::moe_stats: layer {} has no MoE forward state", l);
    MoELayerStats m{.layer = l, .tokens_per_expert = {}, .aux_loss = st->routing.aux_loss, .z_loss = st->routing.z_loss};
    const Tensor& n = st->routing.tokens_per_expert;
    m.tokens_per_expert.assign(n.ptr<int64_t>(), n.ptr<int64_t>() + n.numel());
    m.routed = static_cast<int64_t>(st->router.idx.size());
    for (uint8_t k : st->router.kept) m.dropped += k == 0;
    out.push_back(std::move(m));
  }
  return out;
}

double GPTModel::moe_aux_loss(const Saved& s) const {
  double sum = 0;
  for (const MoELayerStats& m : moe_stats(s)) sum += m.aux_loss + m.z_loss;
  return sum;
}

void GPTModel::begin_global_batch() {
  for (const auto& [l, moe] : moe_layers_) moe->router.reset_global_aux();
}

void GPTModel::finish_optimizer_step(bool applied, Communicator* dp) {
  for (const auto& [l, moe] : moe_layers_) {
    if (applied && dp && dp->size() > 1 && moe->router.cfg.enable_expert_bias)
      dp->all_reduce(moe->router.local_tokens_per_expert.view());  // f32 counts, exact below 2^24
    if (applied) moe->router.update_expert_bias();  // clears the counts
    else moe->router.local_tokens_per_expert.zero_();
  }
}

}  // namespace foundry
