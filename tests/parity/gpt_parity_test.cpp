// Parity of models/gpt with the PyTorch reference (tools/ref/gpt.py, fixtures written by
// tools/ref/write_gpt_fixture.py): logits, loss, every parameter gradient at the initial
// weights, and 10 AdamW steps with gradient clipping (loss before each step, final weights).
// Tolerances (fp32): logits and loss within 1e-5 relative; gradients and parameters within
// 1e-4 relative to their norm.
#include "foundry/ops/loss.h"
#include "parity/parity_util.h"

namespace foundry {
namespace {

using testing::adamw_of;
using testing::expect_params_match;
using testing::Fixture;
using testing::load_weights;
using testing::rel_diff;

struct ParityCase {
  Fixture fx;
  GPTConfig cfg;
  int64_t B = 0, S = 0;
  Tensor tokens, targets;  // (B S) i32
};

ParityCase load(const std::string& file) {
  ParityCase s{Fixture::load(std::string(FOUNDRY_FIXTURES_DIR) + "/" + file)};
  const int64_t* c = s.fx.at("config").ptr<int64_t>();  // [V, H, L, NH, NKV, F, S, B, tied]
  s.cfg = {.vocab_size = c[0], .hidden_size = c[1], .num_layers = c[2], .num_attention_heads = c[3],
           .num_query_groups = c[4], .ffn_hidden_size = c[5], .share_embeddings_and_output_weights = c[8] != 0};
  s.S = c[6];
  s.B = c[7];
  s.tokens = s.fx.at("tokens").reshape({s.B * s.S});
  s.targets = s.fx.at("targets").reshape({s.B * s.S});
  return s;
}

class GPTParity : public ::testing::TestWithParam<const char*> {};

TEST_P(GPTParity, LogitsLossAndGradients) {
  ParityCase s = load(GetParam());
  GPTModel m(s.cfg, 0);
  load_weights(m, s.fx, "");
  Context ctx;
  GPTModel::Saved saved;
  const SequenceLayout seq = SequenceLayout::uniform(s.B, s.S);
  Tensor logits = m.forward(ctx, s.tokens, seq, saved);
  EXPECT_TRUE(testing::close_in_norm(logits, s.fx.at("logits"), 1e-5)) << "logits";
  EXPECT_TRUE(testing::allclose(logits, s.fx.at("logits"), 1e-5, 1e-5)) << "logits";
  const CrossEntropyResult ce = cross_entropy_fused({.logits = logits, .targets = s.targets, .dlogits = logits});
  EXPECT_LE(rel_diff(ce.loss, s.fx.at("loss").to_vector()[0]), 1e-5) << ce.loss;
  m.backward(ctx, logits, seq, saved);
  expect_params_match(m.params(), /*gradients=*/true, s.fx, "grad.", 1e-4);
}

TEST_P(GPTParity, TenAdamWStepsWithClipping) {
  ParityCase s = load(GetParam());
  ASSERT_TRUE(s.fx.contains("losses")) << GetParam() << " holds no AdamW trajectory";
  GPTModel m(s.cfg, 0);
  load_weights(m, s.fx, "");
  const testing::FixtureAdamW h = adamw_of(s.fx);
  AdamW opt(m.params(), h.config);
  const auto losses = s.fx.at("losses").to_vector();
  const auto norms = s.fx.at("grad_norms").to_vector();
  const SequenceLayout seq = SequenceLayout::uniform(s.B, s.S);
  Context ctx;
  for (size_t step = 0; step < losses.size(); ++step) {
    m.params().zero_grad();
    GPTModel::Saved saved;
    Tensor logits = m.forward(ctx, s.tokens, seq, saved);
    const double loss = cross_entropy_fused({.logits = logits, .targets = s.targets, .dlogits = logits}).loss;
    m.backward(ctx, logits, seq, saved);
    EXPECT_LE(rel_diff(loss, losses[step]), 1e-5) << "step " << step + 1 << ": " << loss << " vs " << losses[step];
    const GradClip clip = clip_grad_norm(m.params(), h.clip);
    EXPECT_LE(rel_diff(clip.norm, norms[step]), 1e-4) << "grad norm at step " << step + 1;
    opt.step(h.config.lr, clip.coefficient);
  }
  expect_params_match(m.params(), /*gradients=*/false, s.fx, "final.", 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GPTParity, ::testing::Values("gpt_tiny.bin", "gpt_tiny_tied.bin"),
                         [](const auto& info) {
                           return std::string(info.param) == "gpt_tiny.bin" ? "untied" : "tied";
                         });

}  // namespace
}  // namespace foundry
