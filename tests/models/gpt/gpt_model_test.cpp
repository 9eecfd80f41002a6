#include "foundry/models/gpt/gpt_model.h"

#include "foundry/ops/loss.h"
#include "testing.h"

namespace foundry {
namespace {

GPTConfig tiny(bool tied) {
  return {.vocab_size = 31, .hidden_size = 16, .num_layers = 2, .num_attention_heads = 4,
          .num_query_groups = 2, .ffn_hidden_size = 24, .init_method_std = 0.2f,
          .share_embeddings_and_output_weights = tied};
}

Tensor tokens_of(std::initializer_list<int32_t> ids) {
  std::vector<int32_t> v(ids);
  return Tensor::from<int32_t>({static_cast<int64_t>(v.size())}, v);
}

// Mean cross-entropy of the model on (tokens, targets); leaves dlogits-based gradients in the
// table when `grads` is set.
double model_loss(GPTModel& m, const Tensor& tokens, const Tensor& targets, const SequenceLayout& seq,
                  bool grads) {
  Context ctx;
  GPTModel::Saved s;
  Tensor logits = m.forward(ctx, tokens, seq, s);
  if (!grads) return cross_entropy_fused({.logits = logits, .targets = targets}).loss;
  const double loss = cross_entropy_fused({.logits = logits, .targets = targets, .dlogits = logits}).loss;
  m.backward(ctx, logits, seq, s);
  return loss;
}

class GPTModelGradients : public ::testing::TestWithParam<bool> {};

TEST_P(GPTModelGradients, EveryParameterMatchesFiniteDifferences) {
  GPTModel m(tiny(GetParam()), 17);
  const Tensor tokens = tokens_of({1, 5, 9, 30, 2, 2, 7, 11, 0, 3});
  const Tensor targets = tokens_of({5, 9, 30, 2, 4, 7, 11, 0, 3, 29});
  const SequenceLayout seq = SequenceLayout::uniform(2, 5);
  m.params().zero_grad();
  model_loss(m, tokens, targets, seq, true);
  for (int i = 0; i < m.params().size(); ++i) {
    const Param& p = m.params().param(i);
    EXPECT_TRUE(testing::finite_difference_check(
        [&] { return model_loss(m, tokens, targets, seq, false); }, p.value, p.grad, 1e-2, 2e-2, 2e-4, 24))
        << m.params().spec(i).name;
  }
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, GPTModelGradients, ::testing::Values(false, true));

TEST(GPTModel, RegistersMegatronNames) {
  GPTModel untied(tiny(false), 1), tied(tiny(true), 1);
  EXPECT_EQ(untied.params().spec(0).name, "embedding.word_embeddings.weight");
  EXPECT_EQ(untied.params().spec(1).name, "decoder.layers.0.input_layernorm.weight");
  EXPECT_EQ(untied.params().spec(2).name, "decoder.layers.0.self_attention.linear_qkv.weight");
  EXPECT_EQ(untied.params().spec(2).shape, (Shape{(4 + 2 * 2) * 4, 16}));
  EXPECT_EQ(untied.params().spec(untied.params().size() - 1).name, "output_layer.weight");
  EXPECT_EQ(tied.params().size(), untied.params().size() - 1);
  EXPECT_EQ(tied.params().numel(), untied.params().numel() - 31 * 16);
}

TEST(GPTModel, FlopsFormulaCountsEveryMatmul) {
  GPTModel m(tiny(false), 1);
  // Per layer: qkv 16x32, proj 16x16, fc1 16x48, fc2 24x16; output 16x31; attention 6 L S NH HD.
  const double per_layer = 16 * 32 + 16 * 16 + 16 * 48 + 24 * 16;
  EXPECT_DOUBLE_EQ(m.training_flops_per_token(10), 6 * (2 * per_layer + 31 * 16) + 6.0 * 2 * 10 * 16);
}

TEST(GPTModel, RejectsImpossibleShapes) {
  GPTConfig c = tiny(false);
  c.num_query_groups = 3;
  EXPECT_THROW(GPTModel(c, 1), Error);
  c = tiny(false);
  c.hidden_size = 18;
  EXPECT_THROW(GPTModel(c, 1), Error);
}

// Qwen2-style QKV bias (model.add_qkv_bias): one (NKV (G + 2) HD) bias per layer after the weight,
// counted by count_parameters, no weight decay, zero init; training FLOPs unchanged. Gradients of
// every parameter (the bias with non-zero values) match finite differences, with Llama 3 RoPE scaling.
TEST(GPTModel, QkvBiasAndRopeScaling) {
  GPTConfig c = tiny(false);
  const GPTModel plain(c, 1);
  c.add_qkv_bias = true;
  c.use_rope_scaling = true;
  c.rope_scaling_factor = 4.f;
  c.rope_original_max_position_embeddings = 32;  // short: scaled frequencies at HD 4 and S 5
  GPTModel m(c, 17);
  EXPECT_EQ(m.params().numel(), plain.params().numel() + 2 * (4 + 2 * 2) * 4);
  EXPECT_EQ(count_parameters(m.config()).total, m.params().numel());
  EXPECT_EQ(count_parameters(m.config()).active, m.params().numel());
  EXPECT_EQ(m.params().spec(3).name, "decoder.layers.0.self_attention.linear_qkv.bias");
  EXPECT_EQ(m.params().spec(3).shape, (Shape{(4 + 2 * 2) * 4}));
  EXPECT_FALSE(m.params().spec(3).weight_decay);
  EXPECT_DOUBLE_EQ(m.training_flops_per_token(10), plain.training_flops_per_token(10));
  for (const char* name : {"decoder.layers.0.self_attention.linear_qkv.bias", "decoder.layers.1.self_attention.linear_qkv.bias"}) {
    Param& b = m.params().at(name);
    EXPECT_TRUE(testing::allclose(b.value, Tensor::zeros(b.value.shape()), 0, 0));
    b.value.copy_from(testing::randn(b.value.shape(), 3, 0.5f));
  }
  const Tensor tokens = tokens_of({1, 5, 9, 30, 2, 2, 7, 11, 0, 3});
  const Tensor targets = tokens_of({5, 9, 30, 2, 4, 7, 11, 0, 3, 29});
  const SequenceLayout seq = SequenceLayout::uniform(2, 5);
  m.params().zero_grad();
  model_loss(m, tokens, targets, seq, true);
  for (int i = 0; i < m.params().size(); ++i) {
    const Param& p = m.params().param(i);
    EXPECT_TRUE(testing::finite_difference_check(
        [&] { return model_loss(m, tokens, targets, seq, false); }, p.value, p.grad, 1e-2, 2e-2, 2e-4, 24))
        << m.params().spec(i).name;
  }
}

TEST(GPTModel, RopeScalingSettingsAreCheckedNamingTheKey) {
  GPTConfig c = tiny(false);
  c.use_rope_scaling = true;
  EXPECT_NO_THROW(resolve_gpt_config(c));
  c.rope_scaling_factor = 0.f;
  EXPECT_ERROR_MENTIONS(resolve_gpt_config(c), "model.rope_scaling_factor", "> 0");
  c = tiny(false);
  c.use_rope_scaling = true;
  c.rope_low_freq_factor = 4.f;
  EXPECT_ERROR_MENTIONS(resolve_gpt_config(c), "model.rope_high_freq_factor", "model.rope_low_freq_factor");
  c.rope_low_freq_factor = -1.f;
  EXPECT_ERROR_MENTIONS(resolve_gpt_config(c), "model.rope_low_freq_factor", "> 0");
  c = tiny(false);
  c.use_rope_scaling = true;
  c.rope_original_max_position_embeddings = 0;
  EXPECT_ERROR_MENTIONS(resolve_gpt_config(c), "model.rope_original_max_position_embeddings");
  c.use_rope_scaling = false;  // off: the settings are not used
  EXPECT_NO_THROW(resolve_gpt_config(c));
}

}  // namespace
}  // namespace foundry
