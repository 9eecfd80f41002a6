#include "foundry/nn/attention.h"

#include <algorithm>
#include <cmath>

#include "foundry/ops/attention.h"
#include "foundry/ops/layout.h"
#include "foundry/ops/rope.h"
#include "module_check.h"

namespace foundry {
namespace {

using testing::randn;

struct AttentionFixture {
  Attention attn;
  ParamTable table;
  explicit AttentionFixture(Attention::Config c) : attn(c) {
    attn.register_params(table, "self_attention");
    table.allocate(21);
  }
};

TEST(AttentionModule, GradientsMatchFiniteDifferencesWithGqa) {
  AttentionFixture f({.hidden = 16, .num_heads = 4, .num_kv_heads = 2, .init_std = 0.3f,
                      .output_init_std = 0.3f});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(2, 5);
  Tensor x = randn({10, 16}, 1), w = randn({10, 16}, 2);
  Attention::Saved s;
  f.attn.forward(ctx, x, seq, s);
  Tensor dx = f.attn.backward(ctx, w, seq, s);
  auto loss = [&] {
    Attention::Saved s2;
    return testing::dot(f.attn.forward(ctx, x, seq, s2), w);
  };
  EXPECT_TRUE(testing::finite_difference_check(loss, x, dx));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_qkv.weight.value,
                                               f.attn.linear_qkv.weight.grad));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_proj.weight.value,
                                               f.attn.linear_proj.weight.grad));
}

TEST(AttentionModule, CausalOutputIgnoresFutureTokens) {
  AttentionFixture f({.hidden = 16, .num_heads = 2, .num_kv_heads = 1});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(1, 7);
  Tensor x = randn({7, 16}, 3);
  Attention::Saved s1, s2;
  Tensor y1 = f.attn.forward(ctx, x, seq, s1);
  Tensor x2 = x.clone();
  x2.ptr<float>()[6 * 16 + 3] += 1.f;  // change the last token only
  Tensor y2 = f.attn.forward(ctx, x2, seq, s2);
  EXPECT_TRUE(testing::allclose(y1.slice(0, 6), y2.slice(0, 6), 0, 0));
}

TEST(AttentionModule, PackedDocumentsEqualSeparateRuns) {
  AttentionFixture f({.hidden = 16, .num_heads = 4, .num_kv_heads = 4});
  Context ctx;
  Tensor x = randn({9, 16}, 4);
  Attention::Saved s, s_a, s_b;
  Tensor packed = f.attn.forward(ctx, x, SequenceLayout::packed({0, 4, 9}), s);
  Tensor a = f.attn.forward(ctx, x.slice(0, 4).clone(), SequenceLayout::uniform(1, 4), s_a);
  Tensor b = f.attn.forward(ctx, x.slice(4, 9).clone(), SequenceLayout::uniform(1, 5), s_b);
  EXPECT_TRUE(testing::allclose(packed.slice(0, 4), a, 1e-5, 1e-6));
  EXPECT_TRUE(testing::allclose(packed.slice(4, 9), b, 1e-5, 1e-6));
}

// qk_layernorm (Megatron-Core; Hugging Face Qwen3 q_norm / k_norm): RMSNorm over HD on each q and
// k head, before RoPE. The norm weights get non-trivial values so a swapped or missing weight shows.
struct QkNormFixture : AttentionFixture {
  explicit QkNormFixture(Attention::Config c) : AttentionFixture(c) {
    const int64_t HD = attn.cfg.head_dim;
    std::copy_n(testing::randu({HD}, 31, 0.5f, 1.5f).ptr<float>(), HD, attn.q_layernorm.weight.value.ptr<float>());
    std::copy_n(testing::randu({HD}, 32, 0.5f, 1.5f).ptr<float>(), HD, attn.k_layernorm.weight.value.ptr<float>());
  }
};

TEST(AttentionModule, QkLayernormRegistersHeadDimNormsWithoutWeightDecay) {
  AttentionFixture off({.hidden = 16, .num_heads = 4, .num_kv_heads = 2});
  AttentionFixture on({.hidden = 16, .num_heads = 4, .num_kv_heads = 2, .qk_layernorm = true});
  EXPECT_EQ(on.table.numel(), off.table.numel() + 2 * 4);
  for (const char* name : {"self_attention.q_layernorm.weight", "self_attention.k_layernorm.weight"}) {
    const Param& p = on.table.at(name);
    EXPECT_EQ(p.value.shape(), Shape({4}));
    EXPECT_TRUE(testing::allclose(p.value, Tensor::full({4}, 1.f), 0, 0));  // init ones
    for (int i = 0; i < on.table.size(); ++i)
      if (on.table.spec(i).name == name) {
        EXPECT_FALSE(on.table.spec(i).weight_decay);
      }
  }
  EXPECT_THROW(off.table.at("self_attention.q_layernorm.weight"), Error);
}

TEST(AttentionModule, QkLayernormEqualsAttentionOnNaivelyNormalisedQk) {
  const int64_t T = 7, NH = 4, NKV = 2, HD = 6;
  const float eps = 1e-3f;
  QkNormFixture f({.hidden = 12, .num_heads = NH, .num_kv_heads = NKV, .head_dim = HD,
                   .init_std = 0.5f, .output_init_std = 0.3f, .qk_layernorm = true,
                   .qk_layernorm_eps = eps});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(1, T);
  Tensor x = randn({T, 12}, 5);
  Attention::Saved s;
  Tensor y = f.attn.forward(ctx, x, seq, s);

  // Reference: split, normalise every head in double, then RoPE, attention and projection.
  Linear::Saved unused;
  Tensor qkv = f.attn.linear_qkv.forward(ctx, x, unused);
  Tensor q = Tensor::empty({T, NH, HD}), k = Tensor::empty({T, NKV, HD}), v = Tensor::empty({T, NKV, HD});
  qkv_split_forward({.num_heads = NH, .num_kv_heads = NKV, .qkv = qkv, .q = q, .k = k, .v = v});
  auto normalise = [&](Tensor& t, const Tensor& w) {  // t (rows, HD) in place
    float* p = t.ptr<float>();
    const float* wp = w.ptr<float>();
    for (int64_t r = 0; r < t.numel() / HD; ++r) {
      double ms = 0;
      for (int64_t d = 0; d < HD; ++d) ms += double(p[r * HD + d]) * p[r * HD + d];
      const double rstd = 1.0 / std::sqrt(ms / HD + eps);
      for (int64_t d = 0; d < HD; ++d) p[r * HD + d] = static_cast<float>(p[r * HD + d] * rstd * wp[d]);
    }
  };
  normalise(q, f.attn.q_layernorm.weight.value);
  normalise(k, f.attn.k_layernorm.weight.value);
  rope_forward({.positions = seq.positions, .x = q, .out = q});
  rope_forward({.positions = seq.positions, .x = k, .out = k});
  Tensor o = Tensor::empty({T, NH, HD}), lse = Tensor::empty({T, NH});
  attention_forward({.q = q, .k = k, .v = v, .out = o, .lse = lse});
  Tensor ref = f.attn.linear_proj.forward(ctx, o.reshape({T, NH * HD}), unused);
  EXPECT_TRUE(testing::allclose(y, ref, 1e-5, 1e-6));

  // And it differs from attention without the norms (same weights).
  Attention plain = f.attn;
  plain.cfg.qk_layernorm = false;
  Attention::Saved s2;
  EXPECT_FALSE(testing::allclose(plain.forward(ctx, x, seq, s2), y, 1e-3, 1e-3));
}

TEST(AttentionModule, QkLayernormGradientsMatchFiniteDifferences) {
  QkNormFixture f({.hidden = 16, .num_heads = 4, .num_kv_heads = 2, .init_std = 0.3f,
                   .output_init_std = 0.3f, .qk_layernorm = true});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::packed({0, 4, 9});
  Tensor x = randn({9, 16}, 6), w = randn({9, 16}, 7);
  Attention::Saved s;
  f.attn.forward(ctx, x, seq, s);
  Tensor dx = f.attn.backward(ctx, w, seq, s);
  auto loss = [&] {
    Attention::Saved s2;
    return testing::dot(f.attn.forward(ctx, x, seq, s2), w);
  };
  EXPECT_TRUE(testing::finite_difference_check(loss, x, dx));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.q_layernorm.weight.value,
                                               f.attn.q_layernorm.weight.grad));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.k_layernorm.weight.value,
                                               f.attn.k_layernorm.weight.grad));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_qkv.weight.value,
                                               f.attn.linear_qkv.weight.grad));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_proj.weight.value,
                                               f.attn.linear_proj.weight.grad));
}

// forward_inference over `steps` ([from, to) token ranges of each of B sequences of S tokens,
// hidden 16, in order) with a KV cache gives the rows of the training forward.
void expect_kv_cache_path_equals_forward(const Attention& attn, int64_t B, int64_t S, int64_t NKV, int64_t HD,
                                         const std::vector<std::pair<int64_t, int64_t>>& steps) {
  Context ctx;
  Tensor x = randn({B * S, 16}, 8);
  Attention::Saved s;
  Tensor y = attn.forward(ctx, x, SequenceLayout::uniform(B, S), s);  // (B S, H)
  Tensor k_cache = Tensor::zeros({B, S, NKV, HD}), v_cache = Tensor::zeros({B, S, NKV, HD});
  auto tokens = [&](int64_t from, int64_t to) {  // x rows [from, to) of each sequence -> (B (to - from), H)
    Tensor t = Tensor::empty({B * (to - from), 16});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = from; i < to; ++i)
        std::copy_n(x.ptr<float>() + (b * S + i) * 16, 16, t.ptr<float>() + (b * (to - from) + i - from) * 16);
    return t;
  };
  for (const auto& [from, to] : steps) {
    Tensor out = attn.forward_inference(ctx, tokens(from, to), B, from, k_cache, v_cache);
    const int64_t n = to - from;
    for (int64_t b = 0; b < B; ++b)
      EXPECT_TRUE(testing::allclose(out.slice(b * n, (b + 1) * n), y.slice(b * S + from, b * S + to), 1e-5, 1e-6))
          << "tokens " << from << ".." << to << " of sequence " << b;
  }
}

TEST(AttentionModule, QkLayernormInferenceWithKvCacheEqualsTrainingForward) {
  const int64_t B = 2, S = 6, NKV = 2, HD = 4;
  QkNormFixture f({.hidden = 16, .num_heads = 4, .num_kv_heads = NKV, .init_std = 0.3f,
                   .output_init_std = 0.3f, .qk_layernorm = true});
  // Prefill 4 tokens of each sequence, then decode the last 2 one at a time.
  expect_kv_cache_path_equals_forward(f.attn, B, S, NKV, HD, {{0, 4}, {4, 5}, {5, 6}});
}

TEST(AttentionModule, RejectsIndivisibleHeads) {
  EXPECT_THROW(Attention({.hidden = 16, .num_heads = 4, .num_kv_heads = 3}), Error);
  EXPECT_THROW(Attention({.hidden = 18, .num_heads = 4}), Error);
}

// QKV bias (Megatron --add-qkv-bias, Qwen2): "linear_qkv.bias" (NKV (G + 2) HD), zero init, no
// weight decay, added to every row of qkv before the split. The fixture gives it non-trivial values.
struct QkvBiasFixture : AttentionFixture {
  explicit QkvBiasFixture(Attention::Config c) : AttentionFixture(c) {
    const int64_t n = attn.linear_qkv_bias.value.numel();
    attn.linear_qkv_bias.value.copy_from(randn({n}, 41, 0.5f));
  }
};

// Llama 3 bands with a short original context (wavelengths: low 128, high 32): at theta 1e4 and HD 8
// the frequencies 1, 0.1, 0.01, 0.001 (wavelengths 6.3, 63, 628, 6283) are kept, blended, scaled, scaled.
constexpr RopeScaling kLlama3Short{.enabled = true, .factor = 8.f, .low_freq_factor = 1.f, .high_freq_factor = 4.f,
                                   .original_max_position_embeddings = 128};

TEST(AttentionModule, QkvBiasRegistersZeroInitBiasWithoutWeightDecay) {
  AttentionFixture off({.hidden = 16, .num_heads = 4, .num_kv_heads = 2});
  AttentionFixture on({.hidden = 16, .num_heads = 4, .num_kv_heads = 2, .add_qkv_bias = true});
  const int64_t rows = (4 + 2 * 2) * 4;  // NKV (G + 2) HD
  EXPECT_EQ(on.table.numel(), off.table.numel() + rows);
  const Param& b = on.table.at("self_attention.linear_qkv.bias");
  EXPECT_EQ(b.value.shape(), Shape({rows}));
  EXPECT_TRUE(testing::allclose(b.value, Tensor::zeros({rows}), 0, 0));
  EXPECT_FALSE(on.table.spec(b.index).weight_decay);
  EXPECT_THROW(off.table.at("self_attention.linear_qkv.bias"), Error);
  // Same seed: the other parameters' values do not depend on the bias being registered.
  EXPECT_TRUE(testing::allclose(on.attn.linear_qkv.weight.value, off.attn.linear_qkv.weight.value, 0, 0));
}

TEST(AttentionModule, QkvBiasIsAddedToEveryQkvRow) {
  const int64_t T = 5, NH = 4, NKV = 2, HD = 4;
  QkvBiasFixture f({.hidden = 16, .num_heads = NH, .num_kv_heads = NKV, .init_std = 0.3f, .output_init_std = 0.3f,
                    .add_qkv_bias = true});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(1, T);
  Tensor x = randn({T, 16}, 1);
  Attention::Saved s;
  f.attn.forward(ctx, x, seq, s);
  // Reference: qkv = x W^T + b, split, RoPE (s.v is not rotated: compare it directly).
  Linear::Saved unused;
  Tensor qkv = f.attn.linear_qkv.forward(ctx, x, unused);
  const int64_t C = qkv.size(1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) qkv.ptr<float>()[t * C + c] += f.attn.linear_qkv_bias.value.ptr<float>()[c];
  Tensor q = Tensor::empty({T, NH, HD}), k = Tensor::empty({T, NKV, HD}), v = Tensor::empty({T, NKV, HD});
  qkv_split_forward({.num_heads = NH, .num_kv_heads = NKV, .qkv = qkv, .q = q, .k = k, .v = v});
  EXPECT_TRUE(testing::allclose(s.v, v, 0, 0));
  rope_forward({.positions = seq.positions, .x = q, .out = q});
  EXPECT_TRUE(testing::allclose(s.q, q, 0, 0));
}

TEST(AttentionModule, QkvBiasGradientsMatchFiniteDifferences) {
  for (bool scaling : {false, true}) {
    SCOPED_TRACE(::testing::Message() << "rope_scaling " << scaling);
    QkvBiasFixture f({.hidden = 16, .num_heads = 4, .num_kv_heads = 2, .init_std = 0.3f, .output_init_std = 0.3f,
                      .add_qkv_bias = true, .rope_scaling = scaling ? kLlama3Short : RopeScaling{}});
    Context ctx;
    const SequenceLayout seq = SequenceLayout::packed({0, 4, 9});
    Tensor x = randn({9, 16}, 6), w = randn({9, 16}, 7);
    Attention::Saved s;
    f.attn.forward(ctx, x, seq, s);
    Tensor dx = f.attn.backward(ctx, w, seq, s);
    auto loss = [&] {
      Attention::Saved s2;
      return testing::dot(f.attn.forward(ctx, x, seq, s2), w);
    };
    EXPECT_TRUE(testing::finite_difference_check(loss, x, dx));
    EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_qkv_bias.value, f.attn.linear_qkv_bias.grad));
    EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_qkv.weight.value,
                                                 f.attn.linear_qkv.weight.grad));
    EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_proj.weight.value,
                                                 f.attn.linear_proj.weight.grad));
  }
}

// A zero bias (its initial value) changes nothing: output, dx and the weight gradients equal those
// of attention without the bias, exactly (the bias gradient itself: finite differences above).
TEST(AttentionModule, ZeroQkvBiasLeavesOutputAndWeightGradientsUnchanged) {
  AttentionFixture off({.hidden = 16, .num_heads = 4, .num_kv_heads = 2, .init_std = 0.3f, .output_init_std = 0.3f});
  AttentionFixture on({.hidden = 16, .num_heads = 4, .num_kv_heads = 2, .init_std = 0.3f, .output_init_std = 0.3f,
                       .add_qkv_bias = true});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(2, 5);
  Tensor x = randn({10, 16}, 1), w = randn({10, 16}, 2);
  Attention::Saved s_off, s_on;
  Tensor y_off = off.attn.forward(ctx, x, seq, s_off), y_on = on.attn.forward(ctx, x, seq, s_on);
  EXPECT_TRUE(testing::allclose(y_on, y_off, 0, 0));
  Tensor dx_off = off.attn.backward(ctx, w, seq, s_off), dx_on = on.attn.backward(ctx, w, seq, s_on);
  EXPECT_TRUE(testing::allclose(dx_on, dx_off, 0, 0));
  EXPECT_TRUE(testing::allclose(on.attn.linear_qkv.weight.grad, off.attn.linear_qkv.weight.grad, 0, 0));
  EXPECT_TRUE(testing::allclose(on.attn.linear_proj.weight.grad, off.attn.linear_proj.weight.grad, 0, 0));
  double max_db = 0;
  for (float g : on.attn.linear_qkv_bias.grad.to_vector()) max_db = std::max(max_db, double(std::abs(g)));
  EXPECT_GT(max_db, 0.0);
}

TEST(AttentionModule, RopeScalingChangesAttentionAndMatchesScaledRope) {
  const int64_t T = 9, NH = 2, HD = 8;
  AttentionFixture f({.hidden = 16, .num_heads = NH, .num_kv_heads = NH, .init_std = 0.3f, .output_init_std = 0.3f,
                      .rope_scaling = kLlama3Short});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(1, T);
  Tensor x = randn({T, 16}, 3);
  Attention::Saved s;
  Tensor y = f.attn.forward(ctx, x, seq, s);
  // s.q is the split q after the scaled RoPE.
  Linear::Saved unused;
  Tensor qkv = f.attn.linear_qkv.forward(ctx, x, unused);
  Tensor q = Tensor::empty({T, NH, HD}), k = Tensor::empty({T, NH, HD}), v = Tensor::empty({T, NH, HD});
  qkv_split_forward({.num_heads = NH, .num_kv_heads = NH, .qkv = qkv, .q = q, .k = k, .v = v});
  rope_forward({.positions = seq.positions, .scaling = kLlama3Short, .x = q, .out = q});
  EXPECT_TRUE(testing::allclose(s.q, q, 0, 0));
  Attention plain = f.attn;
  plain.cfg.rope_scaling = {};
  Attention::Saved s2;
  EXPECT_FALSE(testing::allclose(plain.forward(ctx, x, seq, s2), y, 1e-4, 1e-5));
}

// The KV-cache path applies the same bias and the same scaled RoPE (positions past_len + i).
TEST(AttentionModule, QkvBiasAndRopeScalingInferenceWithKvCacheEqualsTrainingForward) {
  const int64_t B = 2, S = 6, NKV = 2, HD = 4;
  QkvBiasFixture f({.hidden = 16, .num_heads = 4, .num_kv_heads = NKV, .init_std = 0.3f, .output_init_std = 0.3f,
                    .add_qkv_bias = true, .rope_scaling = kLlama3Short});
  expect_kv_cache_path_equals_forward(f.attn, B, S, NKV, HD, {{0, 3}, {3, 4}, {4, 6}});
}

}  // namespace
}  // namespace foundry
