// Dense -> MoE upcycling (models/gpt/upcycle.h): the invariants of shared/reference/
// upcycling_longctx.md A.9, in fp32 on CPU.
//   1. G = 1, topk-then-softmax: MoE logits == dense logits (T = 1, 2)
//   2. G > 1, virtual groups, topk-then-softmax, linear split: == dense for (R,G,T) in
//      {(4,2,2),(4,4,4),(2,8,8),(2,8,16)}
//   3. softmax-then-topk: per MoE layer y(x) == kappa(x) dense(x), kappa = (R G / T) sum_{j in J} P_j,
//      1 <= kappa <= R G / T
//   4. partition: sum over the G shards == the dense MLP      5. layout (also of ep x etp blocks)
//   6. top-T selects whole groups (identical logits inside a group)
//   7. scale locations (E8G8T8 softmax-then-topk: c = 64, equal split s = 4 exactly)
//   8. one training step breaks the groups' router rows apart      9. errors
// Tolerances: the MoE sums the same products in another order (expert GEMMs over f = F / G
// neurons, the combine over T experts with f32 probabilities), so fp32 results agree to a few
// ulps of the outputs: 1e-5 relative (in norm per token / over the logits).
#include "foundry/models/gpt/upcycle.h"

#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

#include "foundry/nn/mlp.h"
#include "foundry/optim/adamw.h"
#include "foundry/train/train_step.h"
#include "foundry/train/synthetic_data.h"
#include "testing.h"

namespace foundry {
namespace {

GPTConfig dense_config(int64_t ffn = 64) {
  GPTConfig c{.vocab_size = 64, .hidden_size = 32, .num_layers = 2, .num_attention_heads = 4,
              .num_query_groups = 2, .ffn_hidden_size = ffn};
  c.init_method_std = 0.15f;  // large enough that the MLPs and the router matter
  return resolve_gpt_config(c);
}

UpcycleOptions options(int64_t N, int64_t T, int64_t G, bool st = false, std::string scaling = "auto",
                       std::string split = "linear") {
  return {.num_experts = N, .topk = T, .granularity = G, .pre_softmax = st, .weight_scaling = scaling,
          .scaling_split = split};
}

Tensor logits_of(const GPTModel& m, const Batch& b) {
  Context ctx;
  ctx.training = false;
  GPTModel::Saved s;
  return m.forward(ctx, b.tokens, b.layout, s);
}

// Max |a - b| over max |b|: the relative error of a logits tensor.
double max_rel(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  double err = 0, ref = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(va[i]) - vb[i]));
    ref = std::max(ref, std::abs(static_cast<double>(vb[i])));
  }
  return err / ref;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<size_t>(a.nbytes())) == 0;
}

struct Upcycled {
  GPTModel dense;
  GPTModel moe;
  UpcycleScales scales;
  Upcycled(const GPTConfig& d, const UpcycleOptions& o, uint64_t moe_seed = 11)
      : dense(d, 3), moe(upcycled_config(d, o), moe_seed) {
    scales = upcycle_model(moe, o, dense_source_of(dense.params()));
  }
};

void expect_same_logits(const UpcycleOptions& o, int64_t ffn = 64) {
  Upcycled u(dense_config(ffn), o);
  const Batch b = synthetic_batch(2, 12, 64, 5, 0);
  const Tensor want = logits_of(u.dense, b), got = logits_of(u.moe, b);
  EXPECT_LE(max_rel(got, want), 1e-5) << "N " << o.num_experts << " T " << o.topk << " G " << o.granularity;
  EXPECT_TRUE(testing::close_in_norm(got, want, 1e-5));
}

using RGT = std::tuple<int64_t, int64_t, int64_t>;  // (R, G, T)
const std::vector<RGT> kSweep = {{4, 2, 2}, {4, 4, 4}, {2, 8, 8}, {2, 8, 16}};

// 1. Coarse upcycling.
TEST(Upcycle, CoarseTopkThenSoftmaxGivesTheDenseLogits) {
  for (int64_t T : {2, 3, 4}) expect_same_logits(options(4, T, 1));  // T = 1 needs softmax-then-topk (below)
  expect_same_logits(options(8, 2, 1), 48);
}

// 2. Fine-grained upcycling with virtual groups.
TEST(Upcycle, VirtualGroupsWithLinearScalingGiveTheDenseLogits) {
  for (auto [R, G, T] : kSweep) expect_same_logits(options(R * G, T, G));
}

// ... and the linear scaling is what makes it exact: without scaling the MLP output is dense / G,
// and the equal split (c^(1/3) on gate, up and fc2) is not exact for SwiGLU (silu(s z) != s silu(z)).
TEST(Upcycle, WithoutScalingOrWithTheEqualSplitFineGrainedUpcyclingDiffersFromDense) {
  const Batch b = synthetic_batch(2, 12, 64, 5, 0);
  for (const char* split : {"linear", "equal"}) {
    Upcycled u(dense_config(), options(8, 2, 2, false, std::string(split) == "linear" ? "none" : "auto", split));
    EXPECT_GT(max_rel(logits_of(u.moe, b), logits_of(u.dense, b)), 1e-3) << split;
  }
}

// One MoE layer and the dense MLP it came from, side by side (names as in GPTModel).
struct LayerPair {
  static constexpr int64_t H = 32, F = 64;
  MLP dense;
  ParamTable dense_table;
  MoELayer moe;
  ParamTable moe_table;
  UpcycleScales scales;
  LayerPair(const UpcycleOptions& o, float router_std = 0.3f)
      : dense({.hidden = H, .ffn = F, .init_std = 0.15f, .output_init_std = 0.15f}),
        moe({.router = {.hidden = H, .num_experts = o.num_experts, .topk = o.topk, .pre_softmax = o.pre_softmax,
                        .init = Init::normal(router_std)},
             .moe_ffn_hidden_size = F / o.granularity}) {
    dense.register_params(dense_table, "decoder.layers.0.mlp");
    dense_table.allocate(3);
    moe.register_params(moe_table, "decoder.layers.0.mlp");
    moe_table.allocate(11);
    GPTConfig cfg;
    cfg.num_moe_experts = o.num_experts;
    cfg.moe_router_topk = o.topk;
    cfg.moe_router_pre_softmax = o.pre_softmax;
    cfg.moe_ffn_hidden_size = F / o.granularity;
    scales = upcycle_params(moe_table, cfg, o, dense_source_of(dense_table));
  }
};

// 3. Softmax-then-topk: the layer output is kappa(x) times the dense output; 6. whole groups.
TEST(Upcycle, SoftmaxThenTopkScalesTheDenseOutputByKappa) {
  for (auto [R, G, T] : std::vector<RGT>{{4, 1, 1}, {4, 1, 2}, {4, 2, 2}, {4, 4, 4}, {2, 8, 8}, {2, 8, 16}, {4, 2, 4}}) {
    const UpcycleOptions o = options(R * G, T, G, /*st=*/true);
    LayerPair p(o);
    EXPECT_DOUBLE_EQ(p.scales.c, static_cast<double>(R * G * G) / T);
    const int64_t tokens = 24, H = LayerPair::H, N = R * G;
    const Tensor x = testing::randn({tokens, H}, 7);
    Context ctx;
    ctx.training = false;
    MLP::Saved ds;
    MoELayer::Saved ms;
    const Tensor dense = p.dense.forward(ctx, x, ds), y = p.moe.forward(ctx, x, 0, ms);
    const auto& logits = ms.router.logits;  // (T, N) f64
    double min_kappa = 1e9, max_kappa = 0;
    for (int64_t t = 0; t < tokens; ++t) {
      // 6: equal logits inside each group, and the selection is a union of whole groups.
      std::vector<double> group(static_cast<size_t>(R));
      for (int64_t e = 0; e < N; ++e) {
        ASSERT_EQ(logits[t * N + e], logits[t * N + (e / G) * G]) << "token " << t << " expert " << e;
        group[e / G] = logits[t * N + e];
      }
      for (int64_t j = 0; j < R; ++j) {
        int sel = 0;
        for (int64_t g = 0; g < G; ++g) sel += ms.routing.routing_map.ptr<uint8_t>()[t * N + j * G + g];
        EXPECT_TRUE(sel == 0 || sel == G) << "token " << t << " group " << j << ": " << sel << " of " << G;
      }
      // kappa = (R G / T) * sum over the T / G largest groups of softmax(group logits).
      double mx = *std::max_element(group.begin(), group.end()), z = 0;
      for (double l : group) z += std::exp(l - mx);
      std::vector<double> P = group;
      for (double& v : P) v = std::exp(v - mx) / z;
      std::sort(P.begin(), P.end(), std::greater<>());
      double top = 0;
      for (int64_t j = 0; j < T / G; ++j) top += P[static_cast<size_t>(j)];
      const double kappa = static_cast<double>(R * G) / T * top;
      min_kappa = std::min(min_kappa, kappa);
      max_kappa = std::max(max_kappa, kappa);
      EXPECT_GE(kappa, 1 - 1e-12);
      EXPECT_LE(kappa, static_cast<double>(R * G) / T + 1e-12);
      double num = 0, den = 0;
      for (int64_t h = 0; h < H; ++h) {
        const double want = kappa * dense.ptr<float>()[t * H + h];
        num += std::pow(y.ptr<float>()[t * H + h] - want, 2);
        den += want * want;
      }
      EXPECT_LE(std::sqrt(num / den), 1e-5) << "R " << R << " G " << G << " T " << T << " token " << t;
    }
    if (T < N) {
      EXPECT_GT(max_kappa, 1.05) << "the router should not be uniform here";
    } else {
      EXPECT_NEAR(max_kappa, 1.0, 1e-12);  // every group selected
    }
  }
}

// 4. Partition: the G shards (raw, no scaling) sum to the dense MLP for any input; 5. layout.
TEST(Upcycle, ShardsPartitionTheDenseMLPAndExpertsHoldShardEModG) {
  const int64_t R = 3, G = 4, H = LayerPair::H, F = LayerPair::F, f = F / G, N = R * G;
  LayerPair p(options(N, G, G, false, "none"));
  const float* w1 = p.dense.linear_fc1.weight.value.ptr<float>();  // (2F, H)
  const float* w2 = p.dense.linear_fc2.weight.value.ptr<float>();  // (H, F)
  const float* e1 = p.moe.experts.linear_fc1.value.ptr<float>();  // (N, 2f, H)
  const float* e2 = p.moe.experts.linear_fc2.value.ptr<float>();  // (N, H, f)
  // 5: expert e = shard e mod G, bit for bit (scale 1).
  for (int64_t e = 0; e < N; ++e) {
    const int64_t s = e % G;
    for (int64_t r = 0; r < f; ++r) {
      EXPECT_EQ(std::memcmp(e1 + (e * 2 * f + r) * H, w1 + (s * f + r) * H, H * 4), 0) << "gate " << e << " " << r;
      EXPECT_EQ(std::memcmp(e1 + (e * 2 * f + f + r) * H, w1 + (F + s * f + r) * H, H * 4), 0) << "up " << e << " " << r;
    }
    for (int64_t h = 0; h < H; ++h)
      EXPECT_EQ(std::memcmp(e2 + (e * H + h) * f, w2 + h * F + s * f, f * 4), 0) << "fc2 " << e << " " << h;
  }
  // 4: sum_s W2_s (silu(Wg_s x) * Wu_s x) == W2 (silu(Wg x) * Wu x), in f64.
  auto silu = [](double v) { return v / (1 + std::exp(-v)); };
  const Tensor x = testing::randn({5, H}, 9);
  for (int64_t t = 0; t < 5; ++t) {
    const float* xt = x.ptr<float>() + t * H;
    auto act = [&](const float* gate, const float* up) {
      double g = 0, u = 0;
      for (int64_t h = 0; h < H; ++h) g += static_cast<double>(gate[h]) * xt[h], u += static_cast<double>(up[h]) * xt[h];
      return silu(g) * u;
    };
    for (int64_t h = 0; h < H; ++h) {
      double dense = 0, shards = 0;
      for (int64_t n = 0; n < F; ++n) dense += w2[h * F + n] * act(w1 + n * H, w1 + (F + n) * H);
      for (int64_t e = 0; e < G; ++e)
        for (int64_t n = 0; n < f; ++n)
          shards += e2[(e * H + h) * f + n] * act(e1 + (e * 2 * f + n) * H, e1 + (e * 2 * f + f + n) * H);
      EXPECT_NEAR(shards, dense, 1e-12 * std::max(1.0, std::abs(dense)));
    }
  }
  // Router: W[e] = W0[e div G], W0 = the MoE layer's own init.
  MoELayer fresh(p.moe.cfg);
  ParamTable t;
  fresh.register_params(t, "decoder.layers.0.mlp");
  t.allocate(11);
  for (int64_t e = 0; e < N; ++e)
    EXPECT_EQ(std::memcmp(p.moe.router.weight.value.ptr<float>() + e * H,
                          fresh.router.weight.value.ptr<float>() + (e / G) * H, H * 4), 0) << "router row " << e;
}

// 5 (parallel layouts): a table holding the ep x etp blocks of the expert weights gets exactly its
// blocks of the one-process result.
TEST(Upcycle, ExpertAndExpertTensorParallelBlocksMatchTheOneProcessResult) {
  const UpcycleOptions o = options(8, 4, 4);
  Upcycled one(dense_config(), o);
  const int64_t N = 8, H = 32, f = 16;
  for (auto [ep, etp] : std::vector<std::pair<int, int>>{{2, 1}, {4, 1}, {1, 2}, {2, 2}, {2, 4}}) {
    for (int er = 0; er < ep; ++er) {
      for (int tr = 0; tr < etp; ++tr) {
        ParamTable t;
        Param fc1, fc2, router;
        ParamSpec s1{.name = "decoder.layers.1.mlp.experts.linear_fc1.weight", .shape = {N, 2 * f, H}};
        ParamSpec s2{.name = "decoder.layers.1.mlp.experts.linear_fc2.weight", .shape = {N, H, f}};
        shard_split(s1, 0, er, ep, "ep");
        shard_split(s2, 0, er, ep, "ep");
        if (etp > 1) {
          shard_split_halves(s1, 1, tr, etp, "etp");
          shard_split(s2, 2, tr, etp, "etp");
        }
        t.add(fc1, s1);
        t.add(fc2, s2);
        t.add(router, {.name = "decoder.layers.1.mlp.router.weight", .shape = {N, H},
                       .init = Init::normal(one.moe.config().init_method_std)});  // as the model's router
        t.allocate(11);
        GPTConfig cfg = one.moe.config();
        upcycle_params(t, cfg, o, dense_source_of(one.dense.params()));
        for (int i = 0; i < t.size(); ++i) {
          const ParamSpec& s = t.spec(i);
          Tensor want = Tensor::empty(s.shape);
          if (s.sharded()) copy_full_to_shard(s, one.moe.params().at(s.name).value, want);
          else want = one.moe.params().at(s.name).value;
          EXPECT_TRUE(bitwise_equal(t.param(i).value, want)) << s.name << " ep " << er << "/" << ep << " etp " << tr
                                                             << "/" << etp;
        }
      }
    }
  }
}

// 7. Scale locations and values; everything outside the experts copied (norms, attention) or
// regrouped (router) unscaled.
TEST(Upcycle, E8G8T8SoftmaxThenTopkScalesByFourWithTheEqualSplit) {
  const UpcycleOptions eq = options(64, 8, 8, true, "auto", "equal");
  const UpcycleScales s = upcycle_scales(eq);
  EXPECT_EQ(s.c, 64.0);
  EXPECT_EQ(s.gate, 4.0);
  EXPECT_EQ(s.up, 4.0);
  EXPECT_EQ(s.fc2, 4.0);
  const UpcycleScales lin = upcycle_scales(options(64, 8, 8, true));
  EXPECT_EQ(lin.gate, 1.0);
  EXPECT_EQ(lin.up, 8.0);
  EXPECT_EQ(lin.fc2, 8.0);
  EXPECT_EQ(upcycle_scales(options(64, 8, 8, false)).c, 8.0);        // topk-then-softmax: c = G
  EXPECT_EQ(upcycle_scales(options(64, 8, 8, true, "none")).c, 1.0);
  EXPECT_EQ(upcycle_scales(options(64, 8, 8, true, "2.25")).up, 1.5);  // a number is c itself

  Upcycled u(dense_config(), eq);
  const ParamTable &d = u.dense.params(), &m = u.moe.params();
  GPTModel fresh(u.moe.config(), 11);
  for (int i = 0; i < m.size(); ++i) {
    const std::string& name = m.spec(i).name;
    const Tensor& v = m.param(i).value;
    if (name.find(".mlp.experts.") != std::string::npos) {
      const bool fc1 = name.find("linear_fc1") != std::string::npos;
      const std::string dn = name.substr(0, name.find(".experts.")) + (fc1 ? ".linear_fc1.weight" : ".linear_fc2.weight");
      const Tensor& dv = d.at(dn).value;
      // Every dense value appears times 4 exactly (a power of two): compare sums of the expert 0..7 blocks.
      const int64_t per_expert = v.numel() / 64;
      double sum_moe = 0, sum_dense = 0;
      for (int64_t k = 0; k < 8 * per_expert; ++k) sum_moe += v.ptr<float>()[k];
      for (int64_t k = 0; k < dv.numel(); ++k) sum_dense += dv.ptr<float>()[k];
      EXPECT_NEAR(sum_moe, 4 * sum_dense, 1e-9 * (1 + std::abs(sum_dense))) << name;
      EXPECT_EQ(v.ptr<float>()[0], 4 * dv.ptr<float>()[0]) << name;  // expert 0 row 0 = dense row 0
    } else if (name.find(".mlp.router.") != std::string::npos) {
      const Tensor& w0 = fresh.params().at(name).value;
      for (int64_t e = 0; e < 64; ++e)
        EXPECT_EQ(std::memcmp(v.ptr<float>() + e * 32, w0.ptr<float>() + (e / 8) * 32, 32 * 4), 0) << name << " " << e;
    } else {
      EXPECT_TRUE(bitwise_equal(v, d.at(name).value)) << name;
    }
  }
}

// 8. One training step gives the rows of a group different gradients (different shards).
TEST(Upcycle, OneTrainingStepBreaksTheRouterGroupsApart) {
  const int64_t G = 2, N = 8, H = 32;
  Upcycled u(dense_config(), options(N, 4, G));
  AdamW opt(u.moe.params(), {.lr = 1e-2f});
  Context ctx;
  const Batch b = synthetic_batch(2, 12, 64, 5, 1);
  train_step(ctx, u.moe, opt, std::span<const Batch>(&b, 1), 1e-2f, 1.f);
  const float* w = u.moe.params().at("decoder.layers.0.mlp.router.weight").value.ptr<float>();
  for (int64_t j = 0; j < N / G; ++j) {
    double diff = 0;
    for (int64_t h = 0; h < H; ++h) diff = std::max(diff, std::abs(static_cast<double>(w[(j * G) * H + h]) - w[(j * G + 1) * H + h]));
    EXPECT_GT(diff, 1e-4) << "group " << j;
  }
}

// The first training loss of the upcycled model is the dense model's loss on the same batch.
TEST(Upcycle, FirstTrainingLossEqualsTheDenseLoss) {
  for (const UpcycleOptions& o : {options(4, 2, 1), options(8, 4, 4)}) {
    Upcycled u(dense_config(), o);
    AdamW od(u.dense.params(), {.lr = 1e-2f}), om(u.moe.params(), {.lr = 1e-2f});
    Context ctx;
    const Batch b = synthetic_batch(2, 12, 64, 5, 2);
    const StepStats sd = train_step(ctx, u.dense, od, std::span<const Batch>(&b, 1), 1e-2f, 1.f);
    const StepStats sm = train_step(ctx, u.moe, om, std::span<const Batch>(&b, 1), 1e-2f, 1.f);
    EXPECT_NEAR(sm.loss, sd.loss, 1e-6 * sd.loss) << "G " << o.granularity;
  }
}

// 9. Errors name the option and the values.
TEST(Upcycle, BadOptionsAndMismatchedConfigsAreClearErrors) {
  const GPTConfig d = dense_config(48);
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(10, 5, 5)), "ffn_hidden_size 48", "granularity 5");
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(6, 4, 4)), "num_experts 6", "granularity 4");
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(8, 2, 4)), "topk 2", "granularity 4", "whole virtual groups");
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(4, 5, 1)), "topk 5", "num_experts 4");
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(0, 1, 1)), "num_experts", "got 0");
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(4, 1, 1)), "topk 1", "--router softmax-then-topk");
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(4, 2, 1, false, "fast")), "--weight-scaling", "'fast'");
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(4, 2, 1, false, "-2")), "'-2'");
  EXPECT_ERROR_MENTIONS(upcycled_config(d, options(4, 2, 1, false, "auto", "cubic")), "--scaling-split", "'cubic'");
  const GPTConfig moe = upcycled_config(d, options(4, 2, 1));
  EXPECT_ERROR_MENTIONS(upcycled_config(moe, options(4, 2, 1)), "already a MoE");

  // Online: the MoE config against the dense checkpoint's.
  const UpcycleOptions o = upcycle_options_for(d, upcycled_config(d, options(8, 4, 2)), "auto", "linear");
  EXPECT_EQ(o.granularity, 2);
  EXPECT_EQ(o.num_experts, 8);
  EXPECT_EQ(o.topk, 4);
  GPTConfig other = moe;
  other.hidden_size = 64;
  EXPECT_ERROR_MENTIONS(upcycle_options_for(d, other, "auto", "linear"), "model.hidden_size", "32", "64");
  other = moe;
  other.num_query_groups = 4;
  EXPECT_ERROR_MENTIONS(upcycle_options_for(d, other, "auto", "linear"), "model.num_query_groups", "2", "4");
  other = moe;
  other.moe_ffn_hidden_size = 20;
  EXPECT_ERROR_MENTIONS(upcycle_options_for(d, other, "auto", "linear"), "48", "model.moe_ffn_hidden_size 20");
  other = moe;
  other.moe_ffn_hidden_size = 12;  // G = 4, N = 4: one group, topk 2 is not a whole group
  EXPECT_ERROR_MENTIONS(upcycle_options_for(d, other, "auto", "linear"), "topk 2", "granularity 4");
  EXPECT_ERROR_MENTIONS(upcycle_options_for(moe, moe, "auto", "linear"), "already a MoE");
  EXPECT_ERROR_MENTIONS(upcycle_options_for(d, d, "auto", "linear"), "model.num_moe_experts");

  // A dense source without a tensor the MoE model needs.
  GPTModel dense(d, 3), target(moe, 11);
  const DenseSource full = dense_source_of(dense.params());
  const DenseSource missing{.description = "dense checkpoint 'x'", .read = [&](const std::string& name) {
    return name == "decoder.layers.1.mlp.linear_fc2.weight" ? Tensor() : full.read(name);
  }};
  EXPECT_ERROR_MENTIONS(upcycle_model(target, options(4, 2, 1), missing), "dense checkpoint 'x'",
                        "decoder.layers.1.mlp.linear_fc2.weight", "decoder.layers.1.mlp.experts.linear_fc2.weight");
  // Options that do not fit the model.
  EXPECT_ERROR_MENTIONS(upcycle_model(target, options(8, 2, 1), full), "num_moe_experts 4", "num_experts 8");
}

}  // namespace
}  // namespace foundry
