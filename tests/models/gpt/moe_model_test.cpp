// GPTModel with MoE layers: the layer pattern (moe_layer_freq int or list), Megatron parameter
// names, parameter counts (vs the allocated table and the published Mixtral / Qwen3 sizes),
// active-parameter FLOPs, inference mode (no router statistics), and routing statistics.
#include <set>

#include "foundry/models/gpt/gpt_model.h"
#include "foundry/train/config.h"
#include "testing.h"

namespace foundry {
namespace {

GPTConfig tiny_moe() {
  GPTConfig c{.vocab_size = 64, .hidden_size = 32, .num_layers = 4, .num_attention_heads = 4,
              .num_query_groups = 2, .ffn_hidden_size = 48};
  c.num_moe_experts = 4;
  c.moe_router_topk = 2;
  c.moe_ffn_hidden_size = 24;
  c.moe_aux_loss_coeff = {1e-2f};
  return c;
}

std::set<std::string> names(GPTModel& m) {
  std::set<std::string> out;
  for (int i = 0; i < m.params().size(); ++i) out.insert(m.params().spec(i).name);
  return out;
}

TEST(MoEModel, LayerFrequencyAndPatternChooseTheMoELayers) {
  GPTConfig c = tiny_moe();
  c.moe_layer_freq = 2;  // layers 0 and 2
  GPTModel every_other(c, 1);
  ASSERT_EQ(every_other.moe_layers().size(), 2u);
  EXPECT_EQ(every_other.moe_layers()[0].first, 0);
  EXPECT_EQ(every_other.moe_layers()[1].first, 2);
  const std::set<std::string> n = names(every_other);
  EXPECT_TRUE(n.count("decoder.layers.0.mlp.router.weight"));
  EXPECT_TRUE(n.count("decoder.layers.0.mlp.experts.linear_fc1.weight"));
  EXPECT_TRUE(n.count("decoder.layers.1.mlp.linear_fc1.weight"));  // dense
  EXPECT_FALSE(n.count("decoder.layers.1.mlp.router.weight"));

  c.moe_layer_pattern = {0, 0, 1, 1};  // DeepSeek-style dense first layers
  GPTModel pattern(c, 1);
  ASSERT_EQ(pattern.moe_layers().size(), 2u);
  EXPECT_EQ(pattern.moe_layers()[0].first, 2);
  EXPECT_EQ(pattern.moe_layers()[1].first, 3);

  c.moe_layer_pattern = {0, 1};
  EXPECT_ERROR_MENTIONS(GPTModel(c, 1), "model.moe_layer_freq", "2 entries", "4");
  c.moe_layer_pattern = {0, 1, 2, 1};
  EXPECT_ERROR_MENTIONS(GPTModel(c, 1), "model.moe_layer_freq", "0 (dense) or 1 (MoE)");
}

TEST(MoEModel, SharedExpertsGateAndExpertBiasAreRegistered) {
  GPTConfig c = tiny_moe();
  c.moe_shared_expert_intermediate_size = 16;
  c.moe_shared_expert_gate = true;
  c.moe_router_score_function = "sigmoid";
  c.moe_router_enable_expert_bias = true;
  GPTModel m(c, 1);
  const std::set<std::string> n = names(m);
  EXPECT_TRUE(n.count("decoder.layers.3.mlp.shared_experts.linear_fc1.weight"));
  EXPECT_TRUE(n.count("decoder.layers.3.mlp.shared_experts.gate_weight"));
  ASSERT_EQ(m.params().num_buffers(), 4);  // one expert bias per MoE layer, not trained
  EXPECT_EQ(m.params().buffer_name(0), "decoder.layers.0.mlp.router.expert_bias");
  EXPECT_FALSE(n.count("decoder.layers.0.mlp.router.expert_bias"));
}

TEST(MoEModel, RouterSettingsAreValidatedWithTheModelKeys) {
  GPTConfig c = tiny_moe();
  c.moe_router_num_groups = 3;  // 4 experts are not divisible into 3 groups
  c.moe_router_group_topk = 1;
  EXPECT_ERROR_MENTIONS(GPTModel(c, 1), "model: MoE router settings");
  c = tiny_moe();
  c.moe_shared_expert_gate = true;
  EXPECT_ERROR_MENTIONS(GPTModel(c, 1), "model.moe_shared_expert_gate");
}

TEST(MoEModel, ParameterCountsMatchTheTableAndTheActiveFlops) {
  GPTConfig c = tiny_moe();
  c.moe_layer_pattern = {0, 1, 1, 1};
  c.moe_shared_expert_intermediate_size = 8;
  c.moe_shared_expert_gate = true;
  GPTModel m(c, 1);
  const ParameterCount n = count_parameters(m.config());
  EXPECT_EQ(n.total, m.params().numel());
  // Active: the 2 unused experts of each of the 3 MoE layers are left out.
  EXPECT_EQ(n.total - n.active, 3 * 2 * 3 * 32 * 24);
  // FLOPs: 6 x (active matmul parameters, i.e. without norms, router, gate and embedding table) + attention.
  const GPTConfig& r = m.config();
  const double attn = 32.0 * (4 + 2 * 2) * 8 + 4 * 8 * 32;
  const double matmul = 4 * attn + 3 * 32.0 * 48 + 3 * (3 * 32.0 * (2 * 24 + 8)) + 64.0 * 32;
  EXPECT_DOUBLE_EQ(m.training_flops_per_token(16), 6 * matmul + 6.0 * 4 * 16 * 4 * 8);
  EXPECT_EQ(r.moe_ffn_hidden_size, 24);
}

// Parameter totals of the released checkpoints (the sum of the tensor sizes in the Hugging Face
// safetensors): Mixtral-8x7B-v0.1 46,702,792,704; Qwen3-30B-A3B 30,532,122,624 (q/k RMSNorm
// weights, 2 x 128 per layer, included). Active per token (published as 12.9B and 3.3B): total
// minus the unused experts.
TEST(MoEModel, RealSizeRecipesHaveTheReleasedParameterCounts) {
  const std::string dir = std::string(FOUNDRY_SOURCE_DIR) + "/configs/moe/";
  const ParameterCount mixtral = count_parameters(resolve_gpt_config(RunConfig::load(dir + "mixtral-8x7b.yaml").model));
  EXPECT_EQ(mixtral.total, 46'702'792'704);
  EXPECT_EQ(mixtral.active, mixtral.total - int64_t{32} * 6 * (3 * 4096 * 14336LL));
  EXPECT_NEAR(mixtral.active / 1e9, 12.9, 0.05);
  const ParameterCount qwen = count_parameters(resolve_gpt_config(RunConfig::load(dir + "qwen3-30b-a3b.yaml").model));
  EXPECT_EQ(qwen.total, 30'532'122'624);
  EXPECT_EQ(qwen.active, qwen.total - int64_t{48} * 120 * (3 * 2048 * 768LL));
}

TEST(MoEModel, QkLayernormAddsTwoHeadDimNormsPerLayer) {
  GPTConfig c = tiny_moe();  // HD = 32 / 4 = 8
  const int64_t without = GPTModel(c, 1).params().numel();
  c.qk_layernorm = true;
  GPTModel m(c, 1);
  EXPECT_EQ(m.params().numel(), without + 4 * 2 * 8);
  EXPECT_EQ(count_parameters(m.config()).total, m.params().numel());
  const std::set<std::string> n = names(m);
  EXPECT_TRUE(n.count("decoder.layers.3.self_attention.q_layernorm.weight"));
  EXPECT_TRUE(n.count("decoder.layers.3.self_attention.k_layernorm.weight"));
  // Prefill 3 tokens, then 2 more through the KV cache: the training forward's logits.
  Context ctx;
  GPTModel::Saved s;
  const Tensor tokens = Tensor::from<int32_t>({10}, std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  const auto train = m.forward(ctx, tokens, SequenceLayout::uniform(2, 5), s).to_vector();  // (2 5, V)
  KVCache cache = m.make_kv_cache(2, 8);
  const auto first = m.forward_inference(ctx, Tensor::from<int32_t>({2, 3}, std::vector<int32_t>{1, 2, 3, 6, 7, 8}), cache).to_vector();
  const auto rest = m.forward_inference(ctx, Tensor::from<int32_t>({2, 2}, std::vector<int32_t>{4, 5, 9, 10}), cache).to_vector();
  double worst = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t v = 0; v < 64; ++v) {
        const float got = t < 3 ? first[(b * 3 + t) * 64 + v] : rest[(b * 2 + t - 3) * 64 + v];
        worst = std::max(worst, double(std::abs(got - train[(b * 5 + t) * 64 + v])));
      }
  EXPECT_LT(worst, 1e-5);
  const std::string dir = std::string(FOUNDRY_SOURCE_DIR) + "/configs/moe/";
  EXPECT_TRUE(RunConfig::load(dir + "qwen3-moe-tiny.yaml").model.qk_layernorm);
}

TEST(MoEModel, InferenceAndEvaluationLeaveRouterStatisticsAlone) {
  GPTConfig c = tiny_moe();
  c.moe_router_score_function = "sigmoid";
  c.moe_router_enable_expert_bias = true;
  GPTModel m(c, 1);
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  Tensor tokens = Tensor::from<int32_t>({2, 5}, ids);
  Context ctx;  // training = true: forward_inference must still not count tokens
  KVCache cache = m.make_kv_cache(2, 8);
  const Tensor logits = m.forward_inference(ctx, tokens, cache);
  for (const auto& [l, moe] : m.moe_layers())
    for (float v : moe->router.local_tokens_per_expert.to_vector()) EXPECT_EQ(v, 0.f) << l;
  // And a training forward over the same tokens gives the same logits (no dropout, no jitter).
  GPTModel::Saved s;
  const Tensor train_logits = m.forward(ctx, tokens.reshape({10}), SequenceLayout::uniform(2, 5), s);
  EXPECT_TRUE(testing::allclose(train_logits.reshape({2, 5, 64}), logits, 1e-5, 1e-5));
  float counted = 0;
  for (float v : m.moe_layers()[0].second->router.local_tokens_per_expert.to_vector()) counted += v;
  EXPECT_EQ(counted, 10 * 2);  // T x topk
}

TEST(MoEModel, RoutingStatisticsPerLayer) {
  GPTConfig c = tiny_moe();
  c.moe_expert_capacity_factor = 0.5f;  // C = ceil(10 * 2 / 4 * 0.5) = 3 per expert: drops
  c.moe_z_loss_coeff = 1e-3f;
  GPTModel m(c, 1);
  Context ctx;
  GPTModel::Saved s;
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  m.forward(ctx, Tensor::from<int32_t>({10}, ids), SequenceLayout::uniform(2, 5), s);
  const std::vector<MoELayerStats> st = m.moe_stats(s);
  ASSERT_EQ(st.size(), 4u);
  double losses = 0;
  for (const MoELayerStats& l : st) {
    int64_t kept = 0;
    for (int64_t n : l.tokens_per_expert) {
      EXPECT_LE(n, 3);
      kept += n;
    }
    EXPECT_EQ(l.routed, 20);
    EXPECT_EQ(l.dropped, 20 - kept);
    EXPECT_GT(l.aux_loss, 0);
    EXPECT_GT(l.z_loss, 0);
    losses += l.aux_loss + l.z_loss;
  }
  EXPECT_DOUBLE_EQ(m.moe_aux_loss(s), losses);
}

}  // namespace
}  // namespace foundry
