// Parity of models/gpt with MoE layers with the PyTorch reference (tools/ref/moe_gpt.py: Hugging
// Face Mixtral / Qwen3-MoE / Qwen2-MoE sparse blocks with Megatron-Core names, plus Megatron's
// per-layer aux (switch) loss and z-loss; fixtures written by tools/ref/write_moe_fixtures.py):
// logits, per-layer aux / z losses and token counts, CE and CE + sum(aux + z), every parameter
// gradient of CE + sum(aux + z) at the initial weights, and 10 AdamW steps with gradient clipping
// (losses before each step, grad norms, final weights).
//   mixtral: E=4, k=2, Fm=16, every layer MoE
//   qwen3:   E=16, k=4, Fm=4 (fine-grained), every layer MoE, q/k RMSNorm (qk_layernorm)
//   shared:  layers [dense, MoE, MoE], E=8, k=2, shared expert Fs=8 with sigmoid gate
// Routing: softmax over all experts, top-k, renormalised (= Megatron's post-softmax top-k).
// Tolerances (fp32): logits and loss within 1e-5 relative; gradients and parameters within 1e-4
// relative to their norm. The fixture writer checks that a float64 replay routes every token of
// every step identically (smallest top-k score gap 6.5e-6), so routing flips cannot occur.
#include "foundry/ops/loss.h"
#include "parity/parity_util.h"

namespace foundry {
namespace {

using testing::adamw_of;
using testing::expect_params_match;
using testing::Fixture;
using testing::load_weights;
using testing::rel_diff;

struct MoECase {
  Fixture fx;
  GPTConfig cfg;
  int64_t B = 0, S = 0;
  Tensor tokens, targets;  // (B S) i32
};

MoECase load(const std::string& file) {
  MoECase s{Fixture::load(std::string(FOUNDRY_FIXTURES_DIR) + "/" + file)};
  // [V, H, L, NH, NKV, F, S, B, tied, E, k, Fm, Fs, shared_gate (, qk_layernorm: absent = 0)]
  const Tensor& config = s.fx.at("config");
  const int64_t* c = config.ptr<int64_t>();
  const float* coeff = s.fx.at("moe_loss_coeffs").ptr<float>();  // [aux, z]
  const Tensor& pattern = s.fx.at("moe_layer_pattern");           // (L) 1 = MoE
  s.cfg = {.vocab_size = c[0], .hidden_size = c[1], .num_layers = c[2], .num_attention_heads = c[3],
           .num_query_groups = c[4], .ffn_hidden_size = c[5], .share_embeddings_and_output_weights = c[8] != 0};
  s.cfg.num_moe_experts = c[9];
  s.cfg.moe_router_topk = c[10];
  s.cfg.moe_ffn_hidden_size = c[11];
  s.cfg.moe_shared_expert_intermediate_size = c[12];
  s.cfg.moe_shared_expert_gate = c[13] != 0;
  s.cfg.qk_layernorm = config.numel() > 14 && c[14] != 0;
  s.cfg.moe_layer_pattern.assign(pattern.ptr<int64_t>(), pattern.ptr<int64_t>() + pattern.numel());
  s.cfg.moe_router_score_function = "softmax";
  s.cfg.moe_router_pre_softmax = false;
  s.cfg.moe_router_load_balancing_type = {"aux_loss"};
  s.cfg.moe_aux_loss_coeff = {coeff[0]};
  s.cfg.moe_z_loss_coeff = coeff[1];
  s.S = c[6];
  s.B = c[7];
  s.tokens = s.fx.at("tokens").reshape({s.B * s.S});
  s.targets = s.fx.at("targets").reshape({s.B * s.S});
  return s;
}

// The fixture holds no parameter the model lacks (one "final." entry per parameter).
int64_t fixture_parameters(const Fixture& fx) {
  int64_t n = 0;
  for (const std::string& name : fx.names()) n += name.rfind("final.", 0) == 0;
  return n;
}

class MoEParity : public ::testing::TestWithParam<const char*> {};

TEST_P(MoEParity, LogitsLossAndGradients) {
  MoECase s = load(GetParam());
  GPTModel m(s.cfg, 0);
  ASSERT_EQ(m.params().size(), fixture_parameters(s.fx)) << "parameter count: model vs fixture";
  load_weights(m, s.fx, "");
  Context ctx;  // aux_loss_scale = 1: one micro-batch
  GPTModel::Saved saved;
  const SequenceLayout seq = SequenceLayout::uniform(s.B, s.S);
  Tensor logits = m.forward(ctx, s.tokens, seq, saved);
  EXPECT_TRUE(testing::close_in_norm(logits, s.fx.at("logits"), 1e-5)) << "logits";
  EXPECT_TRUE(testing::allclose(logits, s.fx.at("logits"), 1e-5, 1e-5)) << "logits";
  // Per MoE layer: aux and z losses, and the token counts of the fixture's top-k selection.
  const auto aux = s.fx.at("aux_losses").to_vector(), z = s.fx.at("z_losses").to_vector();
  const std::vector<MoELayerStats> stats = m.moe_stats(saved);
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < s.cfg.num_layers; ++l) moe_layers += s.fx.contains("topk." + std::to_string(l));
  ASSERT_EQ(static_cast<int64_t>(stats.size()), moe_layers) << "MoE layers";
  for (const MoELayerStats& st : stats) {
    const Tensor& topk = s.fx.at("topk." + std::to_string(st.layer));  // (T, k) i32
    std::vector<int64_t> counts(s.cfg.num_moe_experts, 0);
    for (int64_t i = 0; i < topk.numel(); ++i) ++counts[topk.ptr<int32_t>()[i]];
    EXPECT_EQ(st.tokens_per_expert, counts) << "tokens per expert, layer " << st.layer;
    EXPECT_LE(rel_diff(st.aux_loss, aux[st.layer]), 1e-5) << "aux_loss, layer " << st.layer;
    EXPECT_LE(rel_diff(st.z_loss, z[st.layer]), 1e-5) << "z_loss, layer " << st.layer;
  }
  const CrossEntropyResult ce = cross_entropy_fused({.logits = logits, .targets = s.targets, .dlogits = logits});
  EXPECT_LE(rel_diff(ce.loss, s.fx.at("ce_loss").to_vector()[0]), 1e-5) << ce.loss;
  const double loss = ce.loss + m.moe_aux_loss(saved);  // CE + sum over MoE layers (aux + z)
  EXPECT_LE(rel_diff(loss, s.fx.at("loss").to_vector()[0]), 1e-5) << loss;
  m.backward(ctx, logits, seq, saved);  // adds the aux and z-loss gradients (ctx.aux_loss_scale = 1)
  expect_params_match(m.params(), /*gradients=*/true, s.fx, "grad.", 1e-4);
}

TEST_P(MoEParity, TenAdamWStepsWithClipping) {
  MoECase s = load(GetParam());
  GPTModel m(s.cfg, 0);
  load_weights(m, s.fx, "");
  const testing::FixtureAdamW h = adamw_of(s.fx);
  AdamW opt(m.params(), h.config);
  const auto losses = s.fx.at("losses").to_vector(), ce_losses = s.fx.at("ce_losses").to_vector();
  const auto norms = s.fx.at("grad_norms").to_vector();
  const SequenceLayout seq = SequenceLayout::uniform(s.B, s.S);
  Context ctx;
  for (size_t step = 0; step < ce_losses.size(); ++step) {
    m.params().zero_grad();
    GPTModel::Saved saved;
    Tensor logits = m.forward(ctx, s.tokens, seq, saved);
    const double ce = cross_entropy_fused({.logits = logits, .targets = s.targets, .dlogits = logits}).loss;
    const double loss = ce + m.moe_aux_loss(saved);
    m.backward(ctx, logits, seq, saved);
    EXPECT_LE(rel_diff(ce, ce_losses[step]), 1e-5) << "CE at step " << step + 1 << ": " << ce << " vs "
                                                 << ce_losses[step];
    EXPECT_LE(rel_diff(loss, losses[step]), 1e-5) << "step " << step + 1 << ": " << loss << " vs " << losses[step];
    const GradClip clip = clip_grad_norm(m.params(), h.clip);
    EXPECT_LE(rel_diff(clip.norm, norms[step]), 1e-4) << "grad norm at step " << step + 1;
    opt.step(h.config.lr, clip.coefficient);
  }
  expect_params_match(m.params(), /*gradients=*/false, s.fx, "final.", 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MoEParity,
                         ::testing::Values("moe_mixtral_tiny.bin", "moe_qwen3_tiny.bin", "moe_shared_tiny.bin"),
                         [](const auto& info) {
                           const std::string f = info.param;
                           return f.substr(4, f.size() - 4 - std::string("_tiny.bin").size());
                         });

}  // namespace
}  // namespace foundry
