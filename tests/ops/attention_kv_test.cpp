// Attention with a key/value cache (ops/attention.h, attention_kv_forward) against the naive
// f64 reference (backend/cpu/ref/attention_kv_ref) on odd shapes, GQA/MQA, several batch rows
// and cache fill levels; the append writes exactly the new rows; prefill then token-by-token
// decode equals the training kernel (attention_forward) over the whole causal sequence; bad input.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "foundry/backend/cpu/ref/attention_kv_ref.h"
#include "foundry/ops/attention.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::allclose;
using testing::nan_filled;
using testing::randn;

struct KvCase {
  int64_t B, Tq, past, NH, NKV, HD;
  int64_t spare = 3;  // cache rows beyond past + Tq (NaN: must never be read)
  float q_std = 1.f;
  float scale = 0.f;
  std::string str() const {
    return "B=" + std::to_string(B) + " Tq=" + std::to_string(Tq) + " past=" + std::to_string(past) +
           " NH=" + std::to_string(NH) + " NKV=" + std::to_string(NKV) + " HD=" + std::to_string(HD);
  }
};

// Caches with random rows [0, past), NaN from past on (the append must fill [past, past + Tq)).
Tensor make_cache(const KvCase& c, uint64_t seed) {
  const int64_t Smax = c.past + c.Tq + c.spare;
  Tensor cache = nan_filled({c.B, Smax, c.NKV, c.HD});
  const Tensor r = randn({c.B, Smax, c.NKV, c.HD}, seed);
  const int64_t row = c.NKV * c.HD;
  for (int64_t b = 0; b < c.B; ++b)
    std::copy(r.ptr<float>() + b * Smax * row, r.ptr<float>() + (b * Smax + c.past) * row,
              cache.ptr<float>() + b * Smax * row);
  return cache;
}

void expect_matches_reference(const KvCase& c) {
  SCOPED_TRACE(c.str());
  const Tensor q = randn({c.B, c.Tq, c.NH, c.HD}, 1, c.q_std);
  const Tensor k_new = randn({c.B, c.Tq, c.NKV, c.HD}, 2), v_new = randn({c.B, c.Tq, c.NKV, c.HD}, 3);
  Tensor kc = make_cache(c, 4), vc = make_cache(c, 5);
  Tensor kc_ref = kc.clone(), vc_ref = vc.clone();
  Tensor out = nan_filled({c.B, c.Tq, c.NH, c.HD}), out_ref = nan_filled({c.B, c.Tq, c.NH, c.HD});
  attention_kv_forward({.q = q, .k_new = k_new, .v_new = v_new, .k_cache = kc, .v_cache = vc,
                        .past_len = c.past, .scale = c.scale, .out = out});
  ref::attention_kv_forward({.q = q, .k_new = k_new, .v_new = v_new, .k_cache = kc_ref,
                             .v_cache = vc_ref, .past_len = c.past, .scale = c.scale, .out = out_ref});
  // Same bound as the training kernel's test: scores rounded to f32, exp to ~1e-7 relative.
  const double atol = c.q_std > 1.f ? 2e-5 : 2e-6;
  EXPECT_TRUE(allclose(out, out_ref, 1e-5, atol)) << "out";
  // The append wrote exactly rows [past, past + Tq): compared bitwise, spare rows still NaN.
  const auto k = kc.to_vector(), kr = kc_ref.to_vector(), v = vc.to_vector(), vr = vc_ref.to_vector();
  for (size_t e = 0; e < k.size(); ++e) {
    const bool both_nan_k = std::isnan(k[e]) && std::isnan(kr[e]);
    const bool both_nan_v = std::isnan(v[e]) && std::isnan(vr[e]);
    ASSERT_TRUE(both_nan_k || k[e] == kr[e]) << "k_cache element " << e;
    ASSERT_TRUE(both_nan_v || v[e] == vr[e]) << "v_cache element " << e;
  }
}

const std::vector<std::pair<int64_t, int64_t>> kHeads = {{1, 1}, {4, 2}, {6, 1}, {8, 8}};

TEST(AttentionKv, MatchesReferenceOddShapes) {
  for (int64_t B : {1, 3})
    for (int64_t Tq : {1, 2, 7})
      for (int64_t past : {0, 1, 13, 70})
        for (int64_t HD : {1, 13, 64})
          for (auto [NH, NKV] : kHeads) expect_matches_reference({B, Tq, past, NH, NKV, HD});
}

TEST(AttentionKv, MatchesReferenceHeadDim256AndScale) {
  for (auto [NH, NKV] : kHeads) expect_matches_reference({2, 3, 37, NH, NKV, 256});
  expect_matches_reference({.B = 2, .Tq = 5, .past = 11, .NH = 4, .NKV = 2, .HD = 13, .scale = 0.3f});
  // Peaky rows: scores of order +-100.
  expect_matches_reference({.B = 2, .Tq = 4, .past = 61, .NH = 4, .NKV = 1, .HD = 16, .q_std = 12.f});
}

TEST(AttentionKv, MatchesReferenceOnTheParallelPath) {
  // Big enough for the OpenMP path: a long prefill and a decode step against a long cache.
  expect_matches_reference({2, 130, 0, 8, 2, 64});
  expect_matches_reference({3, 1, 701, 8, 4, 64});
  expect_matches_reference({1, 17, 333, 6, 3, 32, 0});
}

TEST(AttentionKv, ReadsThePrefilledCacheWithoutNewKeys) {
  // k_new / v_new omitted: the caller already wrote rows [past, past + Tq).
  const KvCase c{2, 3, 9, 4, 2, 8};
  const int64_t Smax = c.past + c.Tq;
  const Tensor q = randn({c.B, c.Tq, c.NH, c.HD}, 7);
  Tensor kc = randn({c.B, Smax, c.NKV, c.HD}, 8), vc = randn({c.B, Smax, c.NKV, c.HD}, 9);
  Tensor out = nan_filled({c.B, c.Tq, c.NH, c.HD}), out_ref = nan_filled({c.B, c.Tq, c.NH, c.HD});
  attention_kv_forward({.q = q, .k_cache = kc, .v_cache = vc, .past_len = c.past, .out = out});
  ref::attention_kv_forward({.q = q, .k_cache = kc, .v_cache = vc, .past_len = c.past, .out = out_ref});
  EXPECT_TRUE(allclose(out, out_ref, 1e-5, 2e-6));
}

// Prefill `prefill` tokens, then decode one token at a time: every output equals the training
// kernel's causal attention over the whole sequence (B equal sequences packed along T).
void expect_prefill_decode_matches_training(int64_t B, int64_t S, int64_t prefill, int64_t NH,
                                            int64_t NKV, int64_t HD) {
  SCOPED_TRACE("B=" + std::to_string(B) + " S=" + std::to_string(S) + " prefill=" +
               std::to_string(prefill) + " NH=" + std::to_string(NH) + " NKV=" + std::to_string(NKV));
  const Tensor q = randn({B * S, NH, HD}, 11), k = randn({B * S, NKV, HD}, 12),
               v = randn({B * S, NKV, HD}, 13);
  Tensor want = nan_filled({B * S, NH, HD}), lse = nan_filled({B * S, NH});
  attention_forward({.q = q, .k = k, .v = v, .batch = B, .causal = true, .out = want, .lse = lse});

  const int64_t Smax = S + 5;
  Tensor kc = nan_filled({B, Smax, NKV, HD}), vc = nan_filled({B, Smax, NKV, HD});
  Tensor got = nan_filled({B * S, NH, HD});
  // Tokens [t0, t0 + n) of every sequence, as (B, n, heads, HD) slices of the packed tensors.
  const auto take = [&](const Tensor& x, int64_t t0, int64_t n) {
    const int64_t heads = x.size(1);
    Tensor r = Tensor::empty({B, n, heads, HD});
    for (int64_t b = 0; b < B; ++b)
      std::copy(x.ptr<float>() + (b * S + t0) * heads * HD, x.ptr<float>() + (b * S + t0 + n) * heads * HD,
                r.ptr<float>() + b * n * heads * HD);
    return r;
  };
  for (int64_t t0 = 0; t0 < S;) {
    const int64_t n = t0 == 0 ? prefill : 1;
    Tensor out = nan_filled({B, n, NH, HD});
    attention_kv_forward({.q = take(q, t0, n), .k_new = take(k, t0, n), .v_new = take(v, t0, n),
                          .k_cache = kc, .v_cache = vc, .past_len = t0, .out = out});
    for (int64_t b = 0; b < B; ++b)
      std::copy(out.ptr<float>() + b * n * NH * HD, out.ptr<float>() + (b + 1) * n * NH * HD,
                got.ptr<float>() + (b * S + t0) * NH * HD);
    t0 += n;
  }
  EXPECT_TRUE(allclose(got, want, 1e-5, 2e-6));
}

TEST(AttentionKv, PrefillThenDecodeEqualsTrainingAttention) {
  expect_prefill_decode_matches_training(1, 9, 1, 1, 1, 8);
  expect_prefill_decode_matches_training(3, 37, 5, 4, 2, 13);
  expect_prefill_decode_matches_training(2, 130, 67, 6, 1, 32);  // crosses the 64-key blocks
  expect_prefill_decode_matches_training(2, 70, 70, 8, 8, 64);   // prefill only
}

TEST(AttentionKv, RejectsBadInput) {
  const Tensor q = randn({2, 3, 4, 8}, 1), kn = randn({2, 3, 2, 8}, 2), vn = randn({2, 3, 2, 8}, 3);
  const Tensor kc = Tensor::zeros({2, 10, 2, 8}), vc = Tensor::zeros({2, 10, 2, 8});
  const Tensor out = Tensor::empty({2, 3, 4, 8});
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = q, .k_new = kn, .v_new = vn, .k_cache = kc,
                                              .v_cache = vc, .past_len = 8, .out = out}),
                        "attention_kv_forward", "past_len 8", "Smax = 10");
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = q, .k_new = kn, .v_new = vn, .k_cache = kc,
                                              .v_cache = vc, .past_len = -1, .out = out}),
                        "past_len = -1");
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = q, .k_new = kn, .k_cache = kc, .v_cache = vc,
                                              .out = out}),
                        "k_new and v_new");
  const Tensor kc3 = Tensor::zeros({2, 10, 3, 8});
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = q, .k_cache = kc3, .v_cache = kc3, .out = out}),
                        "NH = 4", "NKV = 3");
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = q, .k_cache = kc, .v_cache = Tensor::zeros({2, 9, 2, 8}),
                                              .out = out}),
                        "v_cache");
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = q, .k_cache = kc, .v_cache = vc,
                                              .out = Tensor::empty({2, 3, 4, 7})}),
                        "out");
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = q, .k_new = randn({2, 2, 2, 8}, 4), .v_new = vn,
                                              .k_cache = kc, .v_cache = vc, .out = out}),
                        "k_new");
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = randn({6, 4, 8}, 5), .k_cache = kc, .v_cache = vc,
                                              .out = out}),
                        "q must be (B, Tq, NH, HD)");
  EXPECT_ERROR_MENTIONS(attention_kv_forward({.q = q, .k_cache = kc, .v_cache = vc,
                                              .scale = std::numeric_limits<float>::infinity(), .out = out}),
                        "scale");
}

}  // namespace
}  // namespace foundry
