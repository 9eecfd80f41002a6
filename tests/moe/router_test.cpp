#include "foundry/moe/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "fixture.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::randn;

const testing::Fixture& fixture() {
  static const testing::Fixture fx = testing::Fixture::load(FOUNDRY_FIXTURES_DIR "/moe_router.bin");
  return fx;
}

struct RouterCase {
  RouterConfig cfg;
  int64_t seq_length = 0;
  float scale = 1.f;
};

// Decodes <case>/cfg (layout in tools/ref/write_router_fixtures.py).
RouterCase decode(const std::string& name, int64_t H, int64_t E) {
  const std::vector<float> c = fixture().at(name + "/cfg").to_vector();
  RouterCase rc;
  RouterConfig& r = rc.cfg;
  r.hidden = H;
  r.num_experts = E;
  r.topk = static_cast<int64_t>(c[0]);
  r.score_function = c[1] == 0 ? "softmax" : c[1] == 1 ? "sigmoid" : "sqrtsoftplus";
  r.pre_softmax = c[2] != 0;
  r.num_groups = static_cast<int64_t>(c[3]);
  r.group_topk = static_cast<int64_t>(c[4]);
  r.topk_scaling_factor = c[5];
  r.enable_expert_bias = c[6] != 0;
  r.load_balancing_type.clear();
  r.aux_loss_coeff.clear();
  const char* types[] = {"aux_loss", "seq_aux_loss", "global_aux_loss"};
  for (int i = 0; i < 3; ++i)
    if (c[7 + i] >= 0) {
      r.load_balancing_type.push_back(types[i]);
      r.aux_loss_coeff.push_back(c[7 + i]);
    }
  if (r.load_balancing_type.empty()) {
    r.load_balancing_type = {"none"};
    r.aux_loss_coeff = {0.f};
  }
  r.z_loss_coeff = c[10];
  r.capacity_factor = c[11];
  r.drop_policy = c[12] != 0 ? "position" : "probs";
  r.pad_to_capacity = c[13] != 0;
  rc.seq_length = static_cast<int64_t>(c[14]);
  rc.scale = c[15];
  return rc;
}

struct Harness {
  Router router;
  ParamTable table;
  explicit Harness(const RouterConfig& c) : router(c) {
    router.register_params(table, "decoder.layers.0.mlp.router");
    table.allocate(3);
  }
};

class RouterParity : public ::testing::TestWithParam<std::string> {};

TEST_P(RouterParity, MatchesMegatronTranscription) {
  const std::string name = GetParam();
  const auto& fx = fixture();
  const Tensor& x = fx.at(name + "/x");
  const Tensor& w = fx.at(name + "/weight");
  const int64_t T = x.size(0), H = x.size(1), E = w.size(0);
  RouterCase rc = decode(name, H, E);
  Harness h(rc.cfg);
  h.router.weight.value.copy_from(w);
  h.router.expert_bias.copy_from(fx.at(name + "/expert_bias"));
  Context ctx;
  auto mask = [&](const std::string& key) {
    Tensor pad;
    if (fx.contains(key)) {
      const Tensor& p = fx.at(key);
      pad = Tensor::empty({p.size(0)}, DType::u8);
      for (int64_t t = 0; t < p.size(0); ++t) pad.ptr<uint8_t>()[t] = static_cast<uint8_t>(p.ptr<int32_t>()[t]);
    }
    return pad;
  };
  if (fx.contains(name + "/x_prev")) {  // an earlier micro-batch of the global batch (global_aux_loss)
    Router::Saved s0;
    h.router.forward(ctx, fx.at(name + "/x_prev"), s0, rc.seq_length, mask(name + "/padding_mask_prev"));
  }
  const Tensor pad = mask(name + "/padding_mask");
  Router::Saved s;
  Router::Output out = h.router.forward(ctx, x, s, rc.seq_length, pad);

  // Routing decisions are exact; values to f32 round-off of the logits.
  const Tensor map_ref = fx.at(name + "/routing_map");
  int mismatches = 0;
  for (int64_t i = 0; i < T * E; ++i) mismatches += out.routing_map.ptr<uint8_t>()[i] != map_ref.ptr<int32_t>()[i];
  EXPECT_EQ(mismatches, 0);
  const Tensor& n_ref = fx.at(name + "/tokens_per_expert");
  for (int64_t e = 0; e < E; ++e) EXPECT_EQ(out.tokens_per_expert.ptr<int64_t>()[e], n_ref.ptr<int64_t>()[e]) << e;
  EXPECT_TRUE(testing::allclose(out.probs, fx.at(name + "/probs"), 1e-5, 1e-6));
  const double aux_ref = fx.at(name + "/aux_loss").to_vector()[0], z_ref = fx.at(name + "/z_loss").to_vector()[0];
  EXPECT_NEAR(out.aux_loss, aux_ref, 1e-5 * std::abs(aux_ref) + 1e-9);
  EXPECT_NEAR(out.z_loss, z_ref, 1e-5 * std::abs(z_ref) + 1e-9);

  h.table.zero_grad();
  Tensor dx = h.router.backward(ctx, fx.at(name + "/dprobs"), s, rc.scale);
  EXPECT_TRUE(testing::close_in_norm(dx, fx.at(name + "/dx"), 1e-5));
  EXPECT_TRUE(testing::close_in_norm(h.router.weight.grad, fx.at(name + "/dweight"), 1e-5));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RouterParity,
    ::testing::Values("softmax_post", "softmax_pre", "softmax_pre_k1", "sigmoid", "sigmoid_k1", "softmax_groups",
                      "sigmoid_groups_bias_scaled", "sigmoid_bias", "softmax_scaled_noloss", "cap_probs",
                      "cap_position", "cap_probs_pad", "cap_position_pad", "seq_aux", "aux_and_seq_aux", "global_aux",
                      "softmax_padding_mask", "sigmoid_padding_mask", "sqrtsoftplus", "sqrtsoftplus_bias_groups",
                      "seq_aux_padding_mask", "aux_and_seq_aux_padding_mask", "global_aux_padding_mask",
                      "sqrtsoftplus_all_lb_padding_mask"));

// Routing is piecewise smooth: a perturbation can flip a top-k, group, capacity or aux-map choice.
// Central differences are compared where both sides keep the routing map and the one-sided slopes
// agree (no kink from the aux loss's top-k counts); at least 3/4 of the probed elements must qualify.
::testing::AssertionResult piecewise_fd(const std::function<std::pair<double, Tensor>()>& eval, const Tensor& x,
                                        const Tensor& analytic) {
  const double h = 1e-3;
  float* p = x.ptr<float>();
  const auto g = analytic.to_vector();
  const auto [base, base_map] = eval();
  const int64_t n = x.numel(), stride = std::max<int64_t>(1, n / 40);
  int checked = 0, probed = 0;
  auto same = [](const Tensor& a, const Tensor& b) {
    return std::equal(a.ptr<uint8_t>(), a.ptr<uint8_t>() + a.numel(), b.ptr<uint8_t>());
  };
  for (int64_t i = 0; i < n; i += stride, ++probed) {
    const float saved = p[i];
    p[i] = saved + static_cast<float>(h);
    const auto [up, up_map] = eval();
    p[i] = saved - static_cast<float>(h);
    const auto [down, down_map] = eval();
    p[i] = saved;
    const double hu = static_cast<double>(saved + static_cast<float>(h)) - saved;
    const double hd = saved - static_cast<double>(saved - static_cast<float>(h));
    const double fwd = (up - base) / hu, bwd = (base - down) / hd, numeric = (up - down) / (hu + hd);
    if (!same(up_map, base_map) || !same(down_map, base_map) || std::abs(fwd - bwd) > 0.05 * std::abs(numeric) + 5e-3)
      continue;
    ++checked;
    if (std::abs(numeric - g[static_cast<size_t>(i)]) > 2e-3 + 1e-2 * std::abs(numeric))
      return ::testing::AssertionFailure() << "d/dx[" << i << "]: analytic " << g[static_cast<size_t>(i)]
                                           << " vs finite difference " << numeric;
  }
  if (4 * checked < 3 * probed)
    return ::testing::AssertionFailure() << "only " << checked << " of " << probed << " elements were smooth";
  return ::testing::AssertionSuccess() << checked << " checked";
}

// Finite differences of sum(probs * w) + scale * (aux + z) through the whole router.
void fd_check(RouterConfig cfg, int64_t T, int64_t seq_length, uint64_t seed, bool padding = false) {
  cfg.hidden = 7;
  Harness h(cfg);
  h.router.weight.value.copy_from(randn({cfg.num_experts, 7}, seed, 0.5f));
  if (cfg.enable_expert_bias) h.router.expert_bias.copy_from(randn({cfg.num_experts}, seed + 1, 0.1f));
  Context ctx0;
  ctx0.rng = Philox(seed + 4, 5);  // every evaluation starts here: the same jitter noise
  Tensor x = randn({T, 7}, seed + 2), w = randn({T, cfg.num_experts}, seed + 3);
  const float scale = 0.7f;
  Tensor pad;
  if (padding) {
    pad = Tensor::zeros({T}, DType::u8);
    for (int64_t t = 0; t < T; t += 3) pad.ptr<uint8_t>()[t] = 1;
  }
  auto eval = [&] {
    Router r2 = h.router;  // same weights; fresh global-aux state
    r2.reset_global_aux();
    Router::Saved s2;
    Context ctx = ctx0;
    Router::Output o = r2.forward(ctx, x, s2, seq_length, pad);
    return std::pair<double, Tensor>(testing::dot(o.probs, w) + scale * (o.aux_loss + o.z_loss), o.routing_map);
  };
  Router::Saved s;
  h.router.reset_global_aux();
  Context ctx = ctx0;
  h.router.forward(ctx, x, s, seq_length, pad);
  EXPECT_EQ(s.jitter.defined(), cfg.input_jitter_eps > 0.f);
  h.table.zero_grad();
  Tensor dx = h.router.backward(ctx, w, s, scale);
  EXPECT_TRUE(piecewise_fd(eval, x, dx)) << cfg.score_function << " seed " << seed;
  EXPECT_TRUE(piecewise_fd(eval, h.router.weight.value, h.router.weight.grad))
      << cfg.score_function << " seed " << seed;
}

TEST(Router, FiniteDifferences) {
  RouterConfig base{.num_experts = 5, .topk = 2, .aux_loss_coeff = {0.1f}, .z_loss_coeff = 0.05f};
  fd_check(base, 11, 0, 10);
  RouterConfig pre = base;
  pre.pre_softmax = true;
  pre.topk = 3;
  fd_check(pre, 11, 0, 20);
  RouterConfig sig = base;
  sig.score_function = "sigmoid";
  sig.topk_scaling_factor = 2.5f;
  sig.load_balancing_type = {"seq_aux_loss", "global_aux_loss"};
  sig.aux_loss_coeff = {0.2f, 0.1f};
  fd_check(sig, 12, 4, 30);
  RouterConfig ssp = base;
  ssp.score_function = "sqrtsoftplus";
  ssp.num_experts = 6;
  ssp.num_groups = 3;
  ssp.group_topk = 2;
  ssp.enable_expert_bias = true;
  fd_check(ssp, 9, 0, 40);
  RouterConfig cap = base;
  cap.capacity_factor = 0.7f;
  cap.pad_to_capacity = true;
  fd_check(cap, 13, 0, 50);
  RouterConfig padded = base;
  padded.score_function = "sigmoid";
  fd_check(padded, 13, 0, 60, /*padding=*/true);
  RouterConfig padded_lb = base;  // every load-balancing type with a padding mask
  padded_lb.load_balancing_type = {"aux_loss", "seq_aux_loss", "global_aux_loss"};
  padded_lb.aux_loss_coeff = {0.1f, 0.2f, 0.15f};
  fd_check(padded_lb, 12, 4, 70, /*padding=*/true);
  RouterConfig jitter = base;  // the gradient w.r.t. the un-jittered input, the noise held fixed
  jitter.input_jitter_eps = 0.3f;
  jitter.score_function = "sigmoid";
  jitter.load_balancing_type = {"seq_aux_loss"};
  fd_check(jitter, 12, 6, 90);
}

// Jittered forward == plain forward on x * noise, the noise reproduced from a copy of ctx.rng;
// backward: dx = dx_plain * noise, dweight = dweight_plain.
TEST(Router, InputJitter) {
  const int64_t T = 14, H = 9, E = 6;
  const float eps = 0.2f;
  RouterConfig c{.hidden = H, .num_experts = E, .topk = 2, .score_function = "sigmoid",
                 .load_balancing_type = {"aux_loss", "seq_aux_loss"}, .aux_loss_coeff = {0.1f, 0.05f},
                 .z_loss_coeff = 0.01f, .input_jitter_eps = eps};
  RouterConfig plain_cfg = c;
  plain_cfg.input_jitter_eps = 0.f;
  Harness jit(c), plain(plain_cfg);
  const Tensor w0 = randn({E, H}, 11, 0.5f);
  jit.router.weight.value.copy_from(w0);
  plain.router.weight.value.copy_from(w0);
  const Tensor x = randn({T, H}, 12), dprobs = randn({T, E}, 13);

  Context ctx;
  ctx.rng = Philox(77, 3);
  Philox copy = ctx.rng;
  const Tensor noise = router_jitter_noise(copy, T, H, eps);
  Router::Saved sj;
  Router::Output oj = jit.router.forward(ctx, x, sj, 7);
  EXPECT_EQ(ctx.rng.offset(), copy.offset());  // the forward drew exactly the documented fill
  EXPECT_EQ(ctx.rng.offset(), 3u + (T * H + 3) / 4);
  float lo = 2.f, hi = 0.f;
  for (float v : noise.to_vector()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_GE(lo, 1.f - eps);
  EXPECT_LE(hi, 1.f + eps);
  EXPECT_LT(lo, 1.f - 0.8f * eps);  // spread over the interval (126 draws)
  EXPECT_GT(hi, 1.f + 0.8f * eps);
  EXPECT_TRUE(testing::allclose(sj.jitter, noise, 0, 0));

  Tensor xj = Tensor::empty({T, H});
  for (int64_t i = 0; i < T * H; ++i) xj.ptr<float>()[i] = x.ptr<float>()[i] * noise.ptr<float>()[i];
  Context ctx_plain;
  Router::Saved sp;
  Router::Output op = plain.router.forward(ctx_plain, xj, sp, 7);
  EXPECT_EQ(ctx_plain.rng.offset(), 0u);  // eps = 0 draws nothing
  EXPECT_TRUE(testing::allclose(oj.probs, op.probs, 0, 0));
  EXPECT_EQ(oj.aux_loss, op.aux_loss);
  EXPECT_EQ(oj.z_loss, op.z_loss);
  for (int64_t i = 0; i < T * E; ++i) ASSERT_EQ(oj.routing_map.ptr<uint8_t>()[i], op.routing_map.ptr<uint8_t>()[i]);

  jit.table.zero_grad();
  plain.table.zero_grad();
  const Tensor dxj = jit.router.backward(ctx, dprobs, sj, 0.5f);
  const Tensor dxp = plain.router.backward(ctx_plain, dprobs, sp, 0.5f);
  for (int64_t i = 0; i < T * H; ++i)
    ASSERT_EQ(dxj.ptr<float>()[i], dxp.ptr<float>()[i] * noise.ptr<float>()[i]) << i;
  EXPECT_TRUE(testing::allclose(jit.router.weight.grad, plain.router.weight.grad, 0, 0));

  // dx_accumulate: the same dx added into the given tensor (plain: the GEMM's beta = 1).
  const Tensor base = randn({T, H}, 9);
  Tensor accj = base.clone(), accp = base.clone();
  EXPECT_EQ(jit.router.backward(ctx, dprobs, sj, 0.5f, accj).data(), accj.data());
  EXPECT_EQ(plain.router.backward(ctx_plain, dprobs, sp, 0.5f, accp).data(), accp.data());
  for (int64_t i = 0; i < T * H; ++i) {
    ASSERT_EQ(accj.ptr<float>()[i], base.ptr<float>()[i] + dxj.ptr<float>()[i]) << i;
    ASSERT_EQ(accp.ptr<float>()[i], base.ptr<float>()[i] + dxp.ptr<float>()[i]) << i;
  }

  // Eval: no jitter, no draw.
  ctx.training = false;
  ctx_plain.training = false;
  const uint64_t offset = ctx.rng.offset();
  Router::Saved se, sq;
  Router::Output oe = jit.router.forward(ctx, x, se, 7);
  Router::Output oq = plain.router.forward(ctx_plain, x, sq, 7);
  EXPECT_EQ(ctx.rng.offset(), offset);
  EXPECT_FALSE(se.jitter.defined());
  EXPECT_TRUE(testing::allclose(oe.probs, oq.probs, 0, 0));

  // Successive training forwards draw fresh noise.
  ctx.training = true;
  Router::Saved s2;
  jit.router.forward(ctx, x, s2, 7);
  EXPECT_FALSE(testing::allclose(s2.jitter, sj.jitter, 0, 0));
}

// seq_aux_loss with padding: every sequence's T is valid / B (Megatron's shared count), a fully
// padded sequence contributes nothing but still counts in B; global_aux_loss: T = valid tokens.
TEST(Router, SeqAndGlobalAuxLossWithPadding) {
  const int64_t S = 5, B = 3, T = S * B, E = 5, k = 2;
  RouterConfig c{.hidden = 6, .num_experts = E, .topk = k, .score_function = "sigmoid",
                 .load_balancing_type = {"seq_aux_loss"}, .aux_loss_coeff = {0.3f}};
  Harness h(c);
  Context ctx;
  const Tensor x = randn({T, 6}, 21);
  Tensor pad = Tensor::zeros({T}, DType::u8);
  for (int64_t s = 0; s < S; ++s) pad.ptr<uint8_t>()[S + s] = 1;  // sequence 1: all padding
  pad.ptr<uint8_t>()[4] = pad.ptr<uint8_t>()[13] = pad.ptr<uint8_t>()[14] = 1;
  const int64_t valid = T - S - 3;
  Router::Saved s;
  const Router::Output o = h.router.forward(ctx, x, s, S, pad);
  // Reference from the aux scores directly: loss = sum_b coeff E / (k Tb^2) sum_e P_b[e] n_b[e] / B.
  const moe::AuxScores a =
      moe::aux_scores(s.logits.data(), T, E, k, moe::ScoreFunction::sigmoid, pad.ptr<uint8_t>());
  EXPECT_EQ(a.valid_tokens, valid);
  const double Tb = static_cast<double>(valid) / B;
  double ref = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t e = 0; e < E; ++e) {
      double P = 0, n = 0;
      for (int64_t t = b * S; t < (b + 1) * S; ++t) {
        P += a.s[static_cast<size_t>(t * E + e)];
        n += a.map[static_cast<size_t>(t * E + e)];
      }
      ref += 0.3 * E / (k * Tb * Tb) * P * n / B;
    }
  EXPECT_NEAR(o.aux_loss, ref, 1e-7 * ref);

  // global_aux_loss over two micro-batches: counts padding-free, T = this micro-batch's valid tokens.
  RouterConfig g = c;
  g.load_balancing_type = {"global_aux_loss"};
  Harness hg(g);
  hg.router.weight.value.copy_from(h.router.weight.value);
  Router::Saved s1, s2;
  Tensor pad1 = Tensor::zeros({T}, DType::u8);
  pad1.ptr<uint8_t>()[0] = 1;
  hg.router.forward(ctx, randn({T, 6}, 22), s1, S, pad1);
  const moe::AuxScores a1 =
      moe::aux_scores(s1.logits.data(), T, E, k, moe::ScoreFunction::sigmoid, pad1.ptr<uint8_t>());
  const Router::Output o2 = hg.router.forward(ctx, x, s2, S, pad);
  double gref = 0;
  for (int64_t e = 0; e < E; ++e) {
    double P = 0;
    for (int64_t t = 0; t < T; ++t) P += a.s[static_cast<size_t>(t * E + e)];
    gref += 0.3 * E / (k * double(valid) * valid) * P * (a.counts[e] + a1.counts[e]) / 2;
  }
  EXPECT_NEAR(o2.aux_loss, gref, 1e-7 * gref);
  EXPECT_EQ(hg.router.global_tokens_per_expert[0] + hg.router.global_tokens_per_expert[1] +
                hg.router.global_tokens_per_expert[2] + hg.router.global_tokens_per_expert[3] +
                hg.router.global_tokens_per_expert[4],
            static_cast<double>(k * (valid + T - 1)));

  // All padding: no loss, no gradient.
  Router::Saved s3;
  Tensor all_pad = Tensor::zeros({T}, DType::u8);
  std::fill(all_pad.ptr<uint8_t>(), all_pad.ptr<uint8_t>() + T, uint8_t{1});
  const Router::Output o3 = h.router.forward(ctx, x, s3, S, all_pad);
  EXPECT_EQ(o3.aux_loss, 0.0);
  for (double d : s3.dlogits_aux) ASSERT_EQ(d, 0.0);
}

TEST(Router, PaddingTokensAreRoutedButNotCountedForTheBias) {
  RouterConfig c{.hidden = 6, .num_experts = 5, .topk = 2, .score_function = "sigmoid", .enable_expert_bias = true,
                 .aux_loss_coeff = {0.1f}, .z_loss_coeff = 0.1f};
  Harness h(c);
  Context ctx;
  Tensor x = randn({10, 6}, 9), pad = Tensor::zeros({10}, DType::u8);
  for (int64_t t = 6; t < 10; ++t) pad.ptr<uint8_t>()[t] = 1;
  Router::Saved s;
  Router::Output o = h.router.forward(ctx, x, s, 0, pad);
  int64_t routed = 0;
  for (int64_t e = 0; e < 5; ++e) routed += o.tokens_per_expert.ptr<int64_t>()[e];
  EXPECT_EQ(routed, 20);  // every token is routed
  float counted = 0;
  for (int64_t e = 0; e < 5; ++e) counted += h.router.local_tokens_per_expert.ptr<float>()[e];
  EXPECT_EQ(counted, 12.f);  // only the 6 valid tokens
  // The losses equal those of the valid tokens alone.
  Router::Saved s6;
  Router r6 = h.router;
  Router::Output o6 = r6.forward(ctx, x.slice(0, 6), s6);
  EXPECT_NEAR(o.aux_loss, o6.aux_loss, 1e-12);
  EXPECT_NEAR(o.z_loss, o6.z_loss, 1e-12);
  EXPECT_ERROR_MENTIONS(h.router.forward(ctx, x, s, 0, Tensor::zeros({9}, DType::u8)), "padding_mask");
}

TEST(Router, NormalisedProbsSumToOneAndScaling) {
  for (const char* fn : {"softmax", "sigmoid", "sqrtsoftplus"}) {
    RouterConfig c{.hidden = 9, .num_experts = 7, .topk = 3, .score_function = fn, .topk_scaling_factor = 2.5f};
    Harness h(c);
    Context ctx;
    Router::Saved s;
    Router::Output o = h.router.forward(ctx, randn({13, 9}, 5), s);
    for (int64_t t = 0; t < 13; ++t) {
      double sum = 0;
      int routed = 0;
      for (int64_t e = 0; e < 7; ++e) {
        sum += o.probs.ptr<float>()[t * 7 + e];
        routed += o.routing_map.ptr<uint8_t>()[t * 7 + e];
        if (!o.routing_map.ptr<uint8_t>()[t * 7 + e]) {
          EXPECT_EQ(o.probs.ptr<float>()[t * 7 + e], 0.f);
        }
      }
      EXPECT_EQ(routed, 3);
      EXPECT_NEAR(sum, 2.5, 1e-5) << fn << " token " << t;
    }
  }
}

TEST(Router, ExpertBiasChangesSelectionNotValues) {
  RouterConfig c{.hidden = 9, .num_experts = 6, .topk = 2, .score_function = "sigmoid", .enable_expert_bias = true};
  Harness h(c);
  Context ctx;
  Tensor x = randn({17, 9}, 6);
  Router::Saved s;
  Router::Output plain = h.router.forward(ctx, x, s);
  float* b = h.router.expert_bias.ptr<float>();
  b[0] = 10.f;  // expert 0 always chosen
  Router::Output biased = h.router.forward(ctx, x, s);
  for (int64_t t = 0; t < 17; ++t) {
    EXPECT_EQ(biased.routing_map.ptr<uint8_t>()[t * 6], 1);
    // Values: unbiased sigmoid scores of the chosen pair, renormalised.
    const float* p = biased.probs.ptr<float>() + t * 6;
    const float* w = h.router.weight.value.ptr<float>();
    const float* xt = x.ptr<float>() + t * 9;
    double q[6], sum = 0;
    for (int e = 0; e < 6; ++e) {
      double z = 0;
      for (int i = 0; i < 9; ++i) z += double(w[e * 9 + i]) * xt[i];
      q[e] = biased.routing_map.ptr<uint8_t>()[t * 6 + e] ? 1 / (1 + std::exp(-z)) : 0;
      sum += q[e];
    }
    for (int e = 0; e < 6; ++e) EXPECT_NEAR(p[e], q[e] / sum, 1e-5);
  }
  EXPECT_NE(plain.tokens_per_expert.ptr<int64_t>()[0], 17);
  // Counts accumulated over both training forwards; the update pushes the overloaded expert down.
  EXPECT_EQ(h.router.local_tokens_per_expert.ptr<float>()[0],
            static_cast<float>(plain.tokens_per_expert.ptr<int64_t>()[0] + 17));
  h.router.update_expert_bias();
  EXPECT_FLOAT_EQ(b[0], 10.f - 1e-3f);
  for (int64_t e = 0; e < 6; ++e) EXPECT_EQ(h.router.local_tokens_per_expert.ptr<float>()[e], 0.f);
}

TEST(Router, PaddingGivesEveryExpertExactlyCapacity) {
  for (const char* policy : {"probs", "position"}) {
    RouterConfig c{.hidden = 5, .num_experts = 7, .topk = 2, .capacity_factor = 1.1f, .drop_policy = policy,
                   .pad_to_capacity = true};
    Harness h(c);
    Context ctx;
    Router::Saved s;
    Router::Output o = h.router.forward(ctx, randn({29, 5}, 8), s);
    const int64_t C = h.router.capacity(29);
    EXPECT_EQ(C, 10);  // ceil(29 * 2 / 7 * 1.1)
    for (int64_t e = 0; e < 7; ++e) EXPECT_EQ(o.tokens_per_expert.ptr<int64_t>()[e], C) << policy;
  }
}

TEST(Router, EvalComputesNoLossesAndBadInputIsReported) {
  RouterConfig c{.hidden = 4, .num_experts = 5, .aux_loss_coeff = {0.1f}, .z_loss_coeff = 0.1f};
  Harness h(c);
  Context ctx;
  ctx.training = false;
  Router::Saved s;
  Router::Output o = h.router.forward(ctx, randn({6, 4}, 1), s);
  EXPECT_EQ(o.aux_loss, 0.0);
  EXPECT_EQ(o.z_loss, 0.0);
  ctx.training = true;
  EXPECT_ERROR_MENTIONS(h.router.forward(ctx, randn({6, 3}, 1), s), "Router", "(6, 3)");
  h.router.forward(ctx, randn({6, 4}, 1), s);
  EXPECT_ERROR_MENTIONS(h.router.backward(ctx, randn({6, 4}, 1), s, 1.f), "Router::backward", "dprobs");
  RouterConfig seq = c;
  seq.load_balancing_type = {"seq_aux_loss"};
  Harness hs(seq);
  EXPECT_ERROR_MENTIONS(hs.router.forward(ctx, randn({6, 4}, 1), s, 4), "seq_aux_loss", "seq_length 4");
}

TEST(RouterConfig, ValidationNamesTheField) {
  auto bad = [](RouterConfig c) { c.hidden = 4; c.num_experts = c.num_experts ? c.num_experts : 6; return c; };
  EXPECT_ERROR_MENTIONS(Router(bad({.topk = 7})), "topk 7");
  EXPECT_ERROR_MENTIONS(Router(bad({.score_function = "relu"})), "score_function 'relu'");
  EXPECT_ERROR_MENTIONS(Router(bad({.topk = 1})), "pre_softmax");
  EXPECT_ERROR_MENTIONS(Router(bad({.num_groups = 4, .group_topk = 2})), "num_groups 4");
  EXPECT_ERROR_MENTIONS(Router(bad({.enable_expert_bias = true})), "enable_expert_bias");
  EXPECT_ERROR_MENTIONS(Router(bad({.load_balancing_type = {"sinkhorn"}})), "'sinkhorn'");
  EXPECT_ERROR_MENTIONS(Router(bad({.load_balancing_type = {"aux_loss", "z"}, .aux_loss_coeff = {1.f, 2.f, 3.f}})),
                        "aux_loss_coeff");
  EXPECT_ERROR_MENTIONS(Router(bad({.drop_policy = "random"})), "drop_policy 'random'");
  EXPECT_ERROR_MENTIONS(Router(bad({.pad_to_capacity = true})), "pad_to_capacity");
  EXPECT_ERROR_MENTIONS(Router(bad({.input_jitter_eps = -0.1f})), "input_jitter_eps");
  EXPECT_ERROR_MENTIONS(Router(bad({.input_jitter_eps = 1.f})), "input_jitter_eps");
}

}  // namespace
}  // namespace foundry
