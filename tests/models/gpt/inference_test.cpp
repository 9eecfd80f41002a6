// GPTModel::forward_inference with a KVCache: the logits of every position equal the training
// forward over the whole sequences (prefill + token-by-token decode, prefill + chunks, several
// batch rows, GQA, tied and untied heads, last_only), the cache can be reset and reused, and
// overflowing it or feeding the wrong batch is an error.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "foundry/models/gpt/gpt_model.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::allclose;

GPTConfig tiny_gqa(bool tied) {
  return {.vocab_size = 37, .hidden_size = 24, .num_layers = 3, .num_attention_heads = 6,
          .num_query_groups = 2, .ffn_hidden_size = 40, .init_method_std = 0.2f,
          .share_embeddings_and_output_weights = tied};
}

// B sequences of S random tokens, (B, S) i32.
Tensor random_tokens(int64_t B, int64_t S, int64_t V, uint64_t seed) {
  const Tensor u = testing::randu({B * S}, seed, 0.f, static_cast<float>(V));
  std::vector<int32_t> ids;
  for (float x : u.to_vector()) ids.push_back(std::min(static_cast<int32_t>(x), static_cast<int32_t>(V - 1)));
  return Tensor::from<int32_t>({B, S}, ids);
}

// Training forward over the whole sequences: (B, S, V).
Tensor full_logits(const GPTModel& m, const Tensor& tokens) {
  const int64_t B = tokens.size(0), S = tokens.size(1);
  Context ctx;
  GPTModel::Saved saved;
  return m.forward(ctx, tokens.reshape({B * S}), SequenceLayout::uniform(B, S), saved)
      .reshape({B, S, m.config().vocab_size});
}

// Tokens [t0, t0 + n) of every row: (B, n).
Tensor columns(const Tensor& tokens, int64_t t0, int64_t n) {
  const int64_t B = tokens.size(0), S = tokens.size(1);
  Tensor r = Tensor::empty({B, n}, DType::i32);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < n; ++i) r.ptr<int32_t>()[b * n + i] = tokens.ptr<int32_t>()[b * S + t0 + i];
  return r;
}

// Runs the cache over `tokens` in chunks of the given sizes (summing to S): (B, S, V).
Tensor cached_logits(const GPTModel& m, const Tensor& tokens, const std::vector<int64_t>& chunks,
                     KVCache& cache) {
  const int64_t B = tokens.size(0), S = tokens.size(1), V = m.config().vocab_size;
  Tensor all = Tensor::empty({B, S, V});
  Context ctx;
  ctx.training = false;
  int64_t t0 = 0;
  for (int64_t n : chunks) {
    EXPECT_EQ(cache.length(), t0);
    const Tensor logits = m.forward_inference(ctx, columns(tokens, t0, n), cache);  // (B, n, V)
    EXPECT_EQ(logits.shape(), (Shape{B, n, V}));
    for (int64_t b = 0; b < B; ++b)
      std::copy(logits.ptr<float>() + b * n * V, logits.ptr<float>() + (b + 1) * n * V,
                all.ptr<float>() + (b * S + t0) * V);
    t0 += n;
  }
  EXPECT_EQ(t0, S);
  return all;
}

// f32 tolerance, 1e-5 relative to the logits' scale. The two paths differ only in the attention
// kernel (one row at a time with exp vs 64 x 64 tiles with exp2; the training forward itself is
// bitwise the same for any sequence length), and both kernels are equally far from an f64
// reference: with this model's peaky scores (HD = 4, init std 0.2) about 1e-6 absolute on
// outputs of order 1, from rounding the scores to f32. Through three layers that leaves logit
// differences of ~1e-6 of max |logit| (measured 2.6e-6 at max |logit| 3.4), which an element-wise
// relative bound cannot judge on logits near zero: the absolute part scales with max |logit|.
constexpr double kRtol = 1e-5;

double max_abs(const Tensor& t) {
  double m = 0;
  for (float x : t.to_vector()) m = std::max(m, static_cast<double>(std::abs(x)));
  return m;
}

::testing::AssertionResult logits_close(const Tensor& got, const Tensor& want) {
  return allclose(got, want, kRtol, kRtol * max_abs(want));
}

TEST(GPTInference, PrefillThenDecodeEqualsFullForwardAtEveryPosition) {
  for (bool tied : {false, true}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    const GPTModel m(tiny_gqa(tied), 5);
    const int64_t B = 3, S = 19;
    const Tensor tokens = random_tokens(B, S, m.config().vocab_size, 9);
    const Tensor want = full_logits(m, tokens);
    std::vector<int64_t> chunks = {6};  // a prefill of 6 tokens, then one token at a time
    chunks.resize(S - 5, 1);
    KVCache cache = m.make_kv_cache(B, S + 4);
    EXPECT_TRUE(logits_close(cached_logits(m, tokens, chunks, cache), want));
  }
}

TEST(GPTInference, AnyChunkingGivesTheSameLogits) {
  const GPTModel m(tiny_gqa(false), 6);
  const int64_t B = 2, S = 23;
  const Tensor tokens = random_tokens(B, S, m.config().vocab_size, 10);
  const Tensor want = full_logits(m, tokens);
  for (const std::vector<int64_t>& chunks :
       {std::vector<int64_t>{1, 1, 1, 20}, std::vector<int64_t>{23}, std::vector<int64_t>{4, 3, 7, 1, 8}}) {
    KVCache cache = m.make_kv_cache(B, S);
    EXPECT_TRUE(logits_close(cached_logits(m, tokens, chunks, cache), want));
  }
}

// Qwen2's QKV bias (non-zero values) and Llama 3 RoPE scaling go through the KV-cache path too.
TEST(GPTInference, QkvBiasAndRopeScalingEqualFullForward) {
  GPTConfig c = tiny_gqa(false);
  c.add_qkv_bias = true;
  c.use_rope_scaling = true;
  c.rope_original_max_position_embeddings = 16;
  GPTModel m(c, 7);
  for (int64_t l = 0; l < 3; ++l) {
    Param& b = m.params().at("decoder.layers." + std::to_string(l) + ".self_attention.linear_qkv.bias");
    b.value.copy_from(testing::randn(b.value.shape(), 20 + l, 0.5f));
  }
  const int64_t B = 2, S = 13;
  const Tensor tokens = random_tokens(B, S, c.vocab_size, 11);
  const Tensor want = full_logits(m, tokens);
  KVCache cache = m.make_kv_cache(B, S);
  EXPECT_TRUE(logits_close(cached_logits(m, tokens, {5, 1, 1, 6}, cache), want));
}

TEST(GPTInference, LongerThanOneAttentionBlock) {
  // 150 positions: the training kernel's 64-key blocks and its parallel path.
  const GPTModel m(tiny_gqa(false), 7);
  const int64_t B = 2, S = 150;
  const Tensor tokens = random_tokens(B, S, m.config().vocab_size, 11);
  std::vector<int64_t> chunks = {100};
  chunks.resize(51, 1);
  KVCache cache = m.make_kv_cache(B, S);
  EXPECT_TRUE(logits_close(cached_logits(m, tokens, chunks, cache), full_logits(m, tokens)));
}

TEST(GPTInference, LastOnlyAndResetReuse) {
  const GPTModel m(tiny_gqa(false), 8);
  const int64_t B = 3, S = 11, V = m.config().vocab_size;
  const Tensor tokens = random_tokens(B, S, V, 12);
  const Tensor want = full_logits(m, tokens);
  KVCache cache = m.make_kv_cache(B, S);
  Context ctx;
  for (int rep = 0; rep < 2; ++rep) {  // the second pass reuses the reset cache
    cache.reset();
    const Tensor last = m.forward_inference(ctx, tokens, cache, /*last_only=*/true);
    ASSERT_EQ(last.shape(), (Shape{B, 1, V}));
    Tensor want_last = Tensor::empty({B, 1, V});
    for (int64_t b = 0; b < B; ++b)
      std::copy(want.ptr<float>() + (b * S + S - 1) * V, want.ptr<float>() + (b * S + S) * V,
                want_last.ptr<float>() + b * V);
    EXPECT_TRUE(logits_close(last, want_last));
    EXPECT_EQ(cache.length(), S);
  }
}

TEST(GPTInference, CacheShapeAndBytes) {
  const GPTModel m(tiny_gqa(false), 1);
  const KVCache cache = m.make_kv_cache(2, 10);
  EXPECT_EQ(cache.num_layers(), 3);
  EXPECT_EQ(cache.k(0).shape(), (Shape{2, 10, 2, 4}));  // (B, Smax, NKV, HD = 24 / 6)
  EXPECT_EQ(cache.bytes(), 3 * 2 * (2 * 10 * 2 * 4) * 4);
  EXPECT_EQ(cache.length(), 0);
}

TEST(GPTInference, RejectsOverflowAndWrongBatch) {
  const GPTModel m(tiny_gqa(false), 1);
  Context ctx;
  KVCache cache = m.make_kv_cache(2, 8);
  m.forward_inference(ctx, random_tokens(2, 6, 37, 1), cache);
  EXPECT_ERROR_MENTIONS(m.forward_inference(ctx, random_tokens(2, 3, 37, 2), cache), "6 cached + 3 new",
                        "max_len 8");
  EXPECT_EQ(cache.length(), 6);  // a rejected call leaves the cache as it was
  EXPECT_ERROR_MENTIONS(m.forward_inference(ctx, random_tokens(3, 1, 37, 3), cache), "batch 2");
  EXPECT_ERROR_MENTIONS(m.forward_inference(ctx, Tensor::zeros({2}, DType::i32), cache), "(B, Tq)");
  EXPECT_ERROR_MENTIONS(KVCache(2, 0, 8, 2, 4), "batch 0");
}

}  // namespace
}  // namespace foundry
