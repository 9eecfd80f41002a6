#include "foundry/train/train_step.h"

#include <cmath>

#include "foundry/train/synthetic_data.h"
#include "testing.h"

namespace foundry {
namespace {

GPTConfig tiny() {
  return {.vocab_size = 64, .hidden_size = 32, .num_layers = 2, .num_attention_heads = 4,
          .num_query_groups = 2, .ffn_hidden_size = 48};
}

// Concatenates microbatches of equal sequence length into one batch.
Batch concat(const Batch& a, const Batch& b, int64_t seq) {
  Batch c;
  const int64_t T = a.tokens.numel() + b.tokens.numel();
  c.tokens = Tensor::empty({T}, DType::i32);
  c.targets = Tensor::empty({T}, DType::i32);
  c.tokens.slice(0, a.tokens.numel()).copy_from(a.tokens);
  c.tokens.slice(a.tokens.numel(), T).copy_from(b.tokens);
  c.targets.slice(0, a.targets.numel()).copy_from(a.targets);
  c.targets.slice(a.targets.numel(), T).copy_from(b.targets);
  c.layout = SequenceLayout::uniform(T / seq, seq);
  return c;
}

TEST(TrainStep, AccumulatingMicrobatchesEqualsOneLargeBatch) {
  const Batch m0 = synthetic_batch(2, 16, 64, 5, 0), m1 = synthetic_batch(2, 16, 64, 5, 1);
  // Mask a few targets so the token-count normalisation is exercised.
  m1.targets.ptr<int32_t>()[3] = -100;
  m1.targets.ptr<int32_t>()[17] = -100;
  const Batch big = concat(m0, m1, 16);
  GPTModel a(tiny(), 3), b(tiny(), 3);
  AdamW oa(a.params(), {.lr = 1e-2f}), ob(b.params(), {.lr = 1e-2f});
  Context ctx;
  const Batch micro[] = {m0, m1};
  const StepStats sa = train_step(ctx, a, oa, micro, 1e-2f, 1.0f);
  const StepStats sb = train_step(ctx, b, ob, std::span(&big, 1), 1e-2f, 1.0f);
  EXPECT_NEAR(sa.loss, sb.loss, 1e-6 * sb.loss);
  EXPECT_NEAR(sa.grad_norm, sb.grad_norm, 1e-5 * sb.grad_norm);
  EXPECT_EQ(sa.tokens, 64);
  for (int i = 0; i < a.params().size(); ++i)
    EXPECT_TRUE(testing::close_in_norm(a.params().param(i).value, b.params().param(i).value, 1e-6))
        << a.params().spec(i).name;
}

GPTConfig tiny_moe() {
  GPTConfig c = tiny();
  c.num_moe_experts = 4;
  c.moe_router_topk = 2;
  c.moe_ffn_hidden_size = 16;
  c.moe_aux_loss_coeff = {1e-1f};
  c.moe_z_loss_coeff = 1e-2f;
  return c;
}

// Megatron scales the MoE auxiliary-loss gradients by 1 / num_microbatches: two identical
// microbatches then give exactly the update of one (the main loss is a token mean either way).
TEST(TrainStep, MoEAuxLossGradientsAreScaledByTheMicrobatchCount) {
  const Batch m = synthetic_batch(2, 16, 64, 5, 0);
  GPTModel a(tiny_moe(), 3), b(tiny_moe(), 3);
  AdamW oa(a.params(), {.lr = 1e-2f}), ob(b.params(), {.lr = 1e-2f});
  Context ctx;
  const Batch twice[] = {m, m};
  const StepStats sa = train_step(ctx, a, oa, twice, 1e-2f, 0.f);
  const StepStats sb = train_step(ctx, b, ob, std::span(&m, 1), 1e-2f, 0.f);
  EXPECT_EQ(ctx.aux_loss_scale, 1.f);  // restored
  EXPECT_NEAR(sa.grad_norm, sb.grad_norm, 1e-5 * sb.grad_norm);
  for (int i = 0; i < a.params().size(); ++i)
    EXPECT_TRUE(testing::close_in_norm(a.params().param(i).value, b.params().param(i).value, 1e-6))
        << a.params().spec(i).name;
  // Statistics: counts add up over microbatches, losses are averaged.
  ASSERT_EQ(sa.moe.size(), 2u);
  EXPECT_EQ(sa.moe[0].routed, 2 * sb.moe[0].routed);
  EXPECT_NEAR(sa.moe[0].aux_loss, sb.moe[0].aux_loss, 1e-12);
  EXPECT_NEAR(sa.moe[1].z_loss, sb.moe[1].z_loss, 1e-12);
}

// Aux-loss-free balancing: once per applied step, bias += rate * sign(mean(n) - n) with n the
// step's token counts; the bias is not a parameter, so the optimizer never touches it.
TEST(TrainStep, ExpertBiasMovesOncePerStepFromTheStepsCounts) {
  GPTConfig c = tiny_moe();
  c.moe_router_score_function = "sigmoid";
  c.moe_router_enable_expert_bias = true;
  c.moe_router_bias_update_rate = 0.25f;
  GPTModel m(c, 3);
  AdamW opt(m.params(), {.lr = 1e-2f});
  Context ctx;
  const Batch micro[] = {synthetic_batch(2, 16, 64, 5, 0), synthetic_batch(2, 16, 64, 5, 1)};
  const StepStats st = train_step(ctx, m, opt, micro, 1e-2f, 1.f);
  for (size_t l = 0; l < st.moe.size(); ++l) {
    const std::vector<int64_t>& n = st.moe[l].tokens_per_expert;
    double mean = 0;
    for (int64_t v : n) mean += static_cast<double>(v) / static_cast<double>(n.size());
    const std::vector<float> bias = m.moe_layers()[l].second->router.expert_bias.to_vector();
    for (size_t e = 0; e < n.size(); ++e) {
      const double off = mean - static_cast<double>(n[e]);
      EXPECT_EQ(bias[e], 0.25f * static_cast<float>((off > 0) - (off < 0))) << l << " " << e;
    }
    for (float v : m.moe_layers()[l].second->router.local_tokens_per_expert.to_vector()) EXPECT_EQ(v, 0.f);
  }
  // Evaluation routes without counting.
  eval_loss(ctx, m, micro[0]);
  for (const auto& [l, moe] : m.moe_layers())
    for (float v : moe->router.local_tokens_per_expert.to_vector()) EXPECT_EQ(v, 0.f);
}

TEST(TrainStep, NonFiniteLossIsNeverApplied) {
  GPTModel m(tiny(), 3);
  AdamW opt(m.params(), {.lr = 1e-2f});
  m.params().param(0).value.ptr<float>()[0] = NAN;  // poisons the embedding row of some token
  const Batch batch = synthetic_batch(2, 16, 64, 5, 0);
  // Make sure the poisoned row is used.
  batch.tokens.ptr<int32_t>()[0] = 0;
  const Tensor before = m.params().param(1).value.clone();
  Context ctx;
  const StepStats st = train_step(ctx, m, opt, std::span(&batch, 1), 1e-2f, 1.0f);
  EXPECT_FALSE(st.applied);
  EXPECT_FALSE(std::isfinite(st.loss));
  EXPECT_EQ(opt.steps(), 0);
  EXPECT_TRUE(testing::allclose(m.params().param(1).value, before, 0, 0));
}

}  // namespace
}  // namespace foundry
