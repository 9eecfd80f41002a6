#include "foundry/moe/moe_layer.h"

#include <cmath>

#include "testing.h"

namespace foundry {
namespace {

using testing::randn;

MoELayer::Config config(int64_t shared_ffn, bool gate = false) {
  return {.router = {.hidden = 16, .num_experts = 5, .topk = 2, .load_balancing_type = {"aux_loss"},
                     .aux_loss_coeff = {1e-2f}, .z_loss_coeff = 1e-3f},
          .moe_ffn_hidden_size = 12,
          .shared_expert_ffn = shared_ffn,
          .shared_expert_gate = gate,
          .init_std = 0.3f,
          .output_init_std = 0.3f};
}

struct Layer {
  MoELayer moe;
  ParamTable table;
  explicit Layer(int64_t shared_ffn, bool gate = false) : moe(config(shared_ffn, gate)) {
    moe.register_params(table, "mlp");
    table.allocate(3);
  }
};

double silu(double v) { return v / (1 + std::exp(-v)); }

// The MoE output computed token by token from the routing result: y_t = sum over the experts
// e routed for t of p_te * W2_e (silu(W1g_e x_t) * W1u_e x_t), plus the shared MLP.
Tensor naive_output(const MoELayer& m, const Tensor& x, const Router::Output& r) {
  const int64_t T = x.size(0), H = x.size(1), E = m.cfg.router.num_experts, F = m.cfg.moe_ffn_hidden_size;
  Tensor y = Tensor::zeros({T, H});
  const float* w1 = m.experts.linear_fc1.value.ptr<float>();
  const float* w2 = m.experts.linear_fc2.value.ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) {
      if (!r.routing_map.ptr<uint8_t>()[t * E + e]) continue;
      const double p = r.probs.ptr<float>()[t * E + e];
      std::vector<double> a(static_cast<size_t>(F));
      for (int64_t f = 0; f < F; ++f) {
        double g = 0, u = 0;
        for (int64_t h = 0; h < H; ++h) {
          g += w1[(e * 2 * F + f) * H + h] * static_cast<double>(x.ptr<float>()[t * H + h]);
          u += w1[(e * 2 * F + F + f) * H + h] * static_cast<double>(x.ptr<float>()[t * H + h]);
        }
        a[static_cast<size_t>(f)] = silu(g) * u * p;
      }
      for (int64_t h = 0; h < H; ++h) {
        double acc = 0;
        for (int64_t f = 0; f < F; ++f) acc += w2[(e * H + h) * F + f] * a[static_cast<size_t>(f)];
        y.ptr<float>()[t * H + h] += static_cast<float>(acc);
      }
    }
  return y;
}

TEST(MoELayer, ForwardEqualsTheTokenByTokenSum) {
  Layer l(0);
  Context ctx;
  Tensor x = randn({11, 16}, 1);
  MoELayer::Saved s;
  Tensor y = l.moe.forward(ctx, x, 11, s);
  EXPECT_TRUE(testing::allclose(y, naive_output(l.moe, x, s.routing), 1e-5, 1e-6));
  // Every token is routed to exactly topk experts; the layer's counts agree with the map.
  int64_t routed = 0;
  for (int64_t i = 0; i < s.routing.routing_map.numel(); ++i) routed += s.routing.routing_map.ptr<uint8_t>()[i];
  EXPECT_EQ(routed, 11 * 2);
}

// With a capacity, dropped token-expert pairs contribute nothing: the output is the token-by-token
// sum over the kept pairs only, and a token dropped by all its experts gets exactly zero.
TEST(MoELayer, DroppedTokensContributeZero) {
  for (const char* policy : {"probs", "position"}) {
    MoELayer::Config c = config(0);
    c.router.capacity_factor = 0.25f;  // C = ceil(23 * 2 / 5 * 0.25) = 3: 15 slots for 23 tokens
    c.router.drop_policy = policy;
    MoELayer moe(c);
    ParamTable table;
    moe.register_params(table, "mlp");
    table.allocate(3);
    Context ctx;
    Tensor x = randn({23, 16}, 7);
    MoELayer::Saved s;
    const Tensor y = moe.forward(ctx, x, 23, s);
    EXPECT_TRUE(testing::allclose(y, naive_output(moe, x, s.routing), 1e-5, 1e-6)) << policy;
    int64_t dropped_tokens = 0;
    for (int64_t t = 0; t < 23; ++t) {
      bool routed = false;
      for (int64_t e = 0; e < 5; ++e) routed |= s.routing.routing_map.ptr<uint8_t>()[t * 5 + e] != 0;
      if (routed) continue;
      ++dropped_tokens;
      for (int64_t h = 0; h < 16; ++h) EXPECT_EQ(y.ptr<float>()[t * 16 + h], 0.f) << policy << " token " << t;
    }
    EXPECT_GT(dropped_tokens, 0) << policy;  // the capacity is tight enough to drop whole tokens
  }
}

// As a FeedForward (inside TransformerLayer) the sequence length comes from the layout; packed
// sequences have no common length, so seq_aux_loss refuses them in training (evaluation is fine).
TEST(MoELayer, FeedForwardTakesTheSequenceLengthFromTheLayout) {
  MoELayer::Config c = config(0);
  c.router.load_balancing_type = {"seq_aux_loss"};
  MoELayer moe(c);
  ParamTable table;
  moe.register_params(table, "mlp");
  table.allocate(3);
  Context ctx;
  Tensor x = randn({12, 16}, 8);
  MoELayer::Saved direct;
  const Tensor y = moe.forward(ctx, x, 4, direct);
  FeedForward& ffn = moe;
  const std::unique_ptr<FeedForward::State> st = ffn.new_state();
  const Tensor y2 = ffn.forward(ctx, x, SequenceLayout::uniform(3, 4), *st);
  EXPECT_TRUE(testing::allclose(y, y2, 0, 0));
  EXPECT_EQ(static_cast<const MoELayer::Saved&>(*st).routing.aux_loss, direct.routing.aux_loss);
  const SequenceLayout packed = SequenceLayout::packed({0, 5, 12});
  EXPECT_ERROR_MENTIONS(ffn.forward(ctx, x, packed, *ffn.new_state()), "seq_aux_loss", "packed");
  ctx.training = false;
  EXPECT_NO_THROW(ffn.forward(ctx, x, packed, *ffn.new_state()));
}

// bf16 experts (model.bf16): the router stays f32, so routing is identical; the experts' GEMMs
// take bf16 inputs (8 significant bits) and accumulate in f32, like nn::Linear.
TEST(MoELayer, Bf16ExpertsRouteIdenticallyAndStayCloseToF32) {
  MoELayer::Config c32 = config(8, true), c16 = config(8, true);
  c16.compute = DType::bf16;
  MoELayer a(c32), b(c16);
  ParamTable ta, tb;
  a.register_params(ta, "mlp");
  b.register_params(tb, "mlp");
  ta.allocate(3);
  tb.allocate(3);
  Context ctx;
  Tensor x = randn({19, 16}, 9), w = randn({19, 16}, 10);
  MoELayer::Saved sa, sb;
  const Tensor ya = a.forward(ctx, x, 19, sa), yb = b.forward(ctx, x, 19, sb);
  EXPECT_TRUE(testing::allclose(sa.routing.probs, sb.routing.probs, 0, 0));
  EXPECT_EQ(sb.experts.x.dtype(), DType::bf16);
  EXPECT_TRUE(testing::close_in_norm(yb, ya, 1e-2));
  const Tensor dxa = a.backward(ctx, w, sa, 1.f), dxb = b.backward(ctx, w, sb, 1.f);
  EXPECT_TRUE(testing::close_in_norm(dxb, dxa, 1e-2));
  for (int i = 0; i < ta.size(); ++i)
    EXPECT_TRUE(testing::close_in_norm(tb.param(i).grad, ta.param(i).grad, 1e-2)) << ta.spec(i).name;
}

// The gated shared expert adds sigmoid(x g^T) * SharedMLP(x) to the routed output.
TEST(MoELayer, GatedSharedExpertScalesTheSharedMLPPerToken) {
  Layer l(8, true);
  ASSERT_NO_THROW(l.table.at("mlp.shared_experts.gate_weight"));
  Context ctx;
  Tensor x = randn({7, 16}, 6);
  MoELayer::Saved s;
  const Tensor y = l.moe.forward(ctx, x, 7, s);
  const Tensor routed = naive_output(l.moe, x, s.routing);
  MLP::Saved ms;
  const Tensor shared = l.moe.shared_experts->mlp.forward(ctx, x, ms);
  const float* g = l.table.at("mlp.shared_experts.gate_weight").value.ptr<float>();
  Tensor expect = Tensor::empty({7, 16});
  for (int64_t t = 0; t < 7; ++t) {
    double logit = 0;
    for (int64_t h = 0; h < 16; ++h) logit += g[h] * static_cast<double>(x.ptr<float>()[t * 16 + h]);
    const double gate = 1 / (1 + std::exp(-logit));
    for (int64_t h = 0; h < 16; ++h)
      expect.ptr<float>()[t * 16 + h] = static_cast<float>(routed.ptr<float>()[t * 16 + h] +
                                                           gate * shared.ptr<float>()[t * 16 + h]);
  }
  EXPECT_TRUE(testing::allclose(y, expect, 1e-5, 1e-6));
}

TEST(MoELayer, SharedExpertGateNeedsASharedExpert) {
  EXPECT_ERROR_MENTIONS(MoELayer(config(0, true)), "moe_shared_expert_gate");
}

struct GradCase {
  int64_t shared_ffn;
  bool gate;
};

class MoELayerGradients : public ::testing::TestWithParam<GradCase> {};

TEST_P(MoELayerGradients, MatchFiniteDifferences) {
  Layer l(GetParam().shared_ffn, GetParam().gate);
  Context ctx;
  Tensor x = randn({9, 16}, 4), w = randn({9, 16}, 5);
  // loss = dot(y, w) + aux + z (the router's losses enter with gradient scale 1).
  auto loss = [&] {
    MoELayer::Saved s;
    const Tensor y = l.moe.forward(ctx, x, 9, s);
    return testing::dot(y, w) + s.routing.aux_loss + s.routing.z_loss;
  };
  MoELayer::Saved s;
  l.moe.forward(ctx, x, 9, s);
  l.table.zero_grad();
  Tensor dx = l.moe.backward(ctx, w, s, 1.f);
  // Small steps so that no token's top-k selection changes (the loss is piecewise smooth).
  EXPECT_TRUE(testing::finite_difference_check(loss, x, dx, 1e-3, 2e-2, 2e-3));
  for (int i = 0; i < l.table.size(); ++i)
    EXPECT_TRUE(testing::finite_difference_check(loss, l.table.param(i).value, l.table.param(i).grad, 1e-3, 2e-2, 2e-3))
        << l.table.spec(i).name;
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutSharedExperts, MoELayerGradients,
                         ::testing::Values(GradCase{0, false}, GradCase{8, false}, GradCase{8, true}));

}  // namespace
}  // namespace foundry
