// Attention (ops/attention.h) against the naive f64 reference (backend/cpu/ref/attention_ref):
// odd and prime shapes, causal and full, GQA/MQA, packed documents, lse; backward against the
// reference and by central finite differences; packing equals separate runs; bad input.
#include "foundry/ops/attention.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "foundry/backend/cpu/attention_kernels.h"
#include "foundry/backend/cpu/ref/attention_ref.h"
#include "foundry/core/threads.h"
#include "testing.h"

// GCC 12 reports its own _mm512_undefined_ps() inside the AVX-512 intrinsics as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace foundry {
namespace {

using testing::allclose;
using testing::close_in_norm;
using testing::randn;

struct Case {
  int64_t T, NH, NKV, HD;
  bool causal = true;
  std::vector<int32_t> cu = {};  // empty: `batch` equal sequences
  int64_t batch = 1;
  float scale = 0.f;
  float q_std = 1.f;  // larger values give peakier softmax rows
  std::string str() const {
    std::string s = "T=" + std::to_string(T) + " NH=" + std::to_string(NH) +
                    " NKV=" + std::to_string(NKV) + " HD=" + std::to_string(HD) +
                    (causal ? " causal" : " full") + " batch=" + std::to_string(batch) + " cu=";
    for (int32_t c : cu) s += std::to_string(c) + ",";
    return s;
  }
};

struct Outputs {
  Tensor out, lse, dq, dk, dv;
};

struct Inputs {
  Tensor q, k, v, dout, cu;
  explicit Inputs(const Case& c, uint64_t seed = 1)
      : q(randn({c.T, c.NH, c.HD}, seed, c.q_std)),
        k(randn({c.T, c.NKV, c.HD}, seed + 1)),
        v(randn({c.T, c.NKV, c.HD}, seed + 2)),
        dout(randn({c.T, c.NH, c.HD}, seed + 3)) {
    if (!c.cu.empty())
      cu = Tensor::from<int32_t>({static_cast<int64_t>(c.cu.size())},
                                 std::span<const int32_t>(c.cu));
  }
};

AttentionArgs make_args(const Case& c, const Inputs& in, const Outputs& o) {
  return {.q = in.q,
          .k = in.k,
          .v = in.v,
          .cu_seqlens = in.cu,
          .batch = c.batch,
          .causal = c.causal,
          .scale = c.scale,
          .out = o.out,
          .lse = o.lse,
          .dout = in.dout,
          .dq = o.dq,
          .dk = o.dk,
          .dv = o.dv};
}

// Forward then backward, with the fused kernel or the reference.
Outputs run(const Case& c, const Inputs& in, bool reference) {
  Outputs o{Tensor::full({c.T, c.NH, c.HD}, NAN), Tensor::full({c.T, c.NH}, NAN),
            Tensor::full({c.T, c.NH, c.HD}, NAN), Tensor::full({c.T, c.NKV, c.HD}, NAN),
            Tensor::full({c.T, c.NKV, c.HD}, NAN)};
  const AttentionArgs args = make_args(c, in, o);
  if (reference) {
    ref::attention_forward(args);
    ref::attention_backward(args);
  } else {
    attention_forward(args);
    attention_backward(args);
  }
  return o;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float x : t.to_vector()) m = std::max(m, static_cast<double>(std::abs(x)));
  return m;
}

void expect_matches_reference(const Case& c) {
  SCOPED_TRACE(c.str());
  const Inputs in(c);
  const Outputs got = run(c, in, false), want = run(c, in, true);
  // Scores are rounded to f32 (relative 6e-8 of |q||k| scale); with q_std > 1 they reach ~+-100,
  // so P carries ~1e-5 relative error and gradient elements that cancel can only be compared
  // to the size of the gradient: the absolute tolerance then scales with max |reference|.
  const auto atol = [&](const Tensor& want_t, double base) {
    return c.q_std > 1.f ? base * std::max(1.0, max_abs(want_t)) : base;
  };
  EXPECT_TRUE(allclose(got.out, want.out, 1e-5, atol(want.out, 2e-6))) << "out";
  EXPECT_TRUE(allclose(got.lse, want.lse, 1e-5, atol(want.lse, 2e-6))) << "lse";
  EXPECT_TRUE(allclose(got.dq, want.dq, 1e-4, atol(want.dq, 1e-5))) << "dq";
  EXPECT_TRUE(allclose(got.dk, want.dk, 1e-4, atol(want.dk, 1e-5))) << "dk";
  EXPECT_TRUE(allclose(got.dv, want.dv, 1e-4, atol(want.dv, 1e-5))) << "dv";
}

const std::vector<std::pair<int64_t, int64_t>> kHeads = {{1, 1}, {4, 2}, {6, 1}, {8, 8}};

TEST(Attention, MatchesReferenceOddShapes) {
  for (int64_t T : {1, 7, 37, 61, 130})
    for (int64_t HD : {1, 8, 13, 64})
      for (auto [NH, NKV] : kHeads)
        for (bool causal : {true, false}) expect_matches_reference({T, NH, NKV, HD, causal});
}

TEST(Attention, MatchesReferenceHeadDim256) {
  for (int64_t T : {1, 7, 37, 70})
    for (auto [NH, NKV] : kHeads)
      for (bool causal : {true, false}) expect_matches_reference({T, NH, NKV, 256, causal});
}

TEST(Attention, MatchesReferenceBatchAndScale) {
  for (bool causal : {true, false}) {
    expect_matches_reference(
        {.T = 3 * 37, .NH = 4, .NKV = 2, .HD = 13, .causal = causal, .batch = 3});
    expect_matches_reference(
        {.T = 2 * 65, .NH = 6, .NKV = 1, .HD = 8, .causal = causal, .batch = 2});
    expect_matches_reference(
        {.T = 61, .NH = 4, .NKV = 4, .HD = 13, .causal = causal, .scale = 0.3f});
    // Peaky rows: scores of order +-100, the online softmax rescales many times.
    expect_matches_reference(
        {.T = 130, .NH = 2, .NKV = 1, .HD = 16, .causal = causal, .q_std = 12.f});
  }
}

TEST(Attention, MatchesReferencePackedDocuments) {
  // Documents of lengths 1, 7, 1, 64, 1, 65, 37, 1: length-1 documents and block boundaries.
  const std::vector<int32_t> cu = {0, 1, 8, 9, 73, 74, 139, 176, 177};
  for (auto [NH, NKV] : kHeads)
    for (bool causal : {true, false})
      for (int64_t HD : {8, 13}) expect_matches_reference({177, NH, NKV, HD, causal, cu});
  // A single document given through cu_seqlens, and empty documents in the list.
  expect_matches_reference({61, 4, 2, 8, true, {0, 61}});
  expect_matches_reference({61, 4, 2, 8, true, {0, 0, 30, 30, 61}});
}

TEST(Attention, PackingEqualsSeparateRuns) {
  for (bool causal : {true, false}) {
    const Case packed{127, 4, 2, 16, causal, {0, 37, 127}};
    SCOPED_TRACE(packed.str());
    const Inputs in(packed, 7);
    const Outputs all = run(packed, in, false);
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 37}, {37, 127}}) {
      const Case one{end - begin, 4, 2, 16, causal};
      Inputs part(one);
      part.q = in.q.slice(begin, end).clone();
      part.k = in.k.slice(begin, end).clone();
      part.v = in.v.slice(begin, end).clone();
      part.dout = in.dout.slice(begin, end).clone();
      const Outputs sep = run(one, part, false);
      EXPECT_TRUE(allclose(all.out.slice(begin, end).clone(), sep.out, 1e-6, 1e-7));
      EXPECT_TRUE(allclose(all.lse.slice(begin, end).clone(), sep.lse, 1e-6, 1e-7));
      EXPECT_TRUE(allclose(all.dq.slice(begin, end).clone(), sep.dq, 1e-6, 1e-7));
      EXPECT_TRUE(allclose(all.dk.slice(begin, end).clone(), sep.dk, 1e-6, 1e-7));
      EXPECT_TRUE(allclose(all.dv.slice(begin, end).clone(), sep.dv, 1e-6, 1e-7));
    }
  }
}

TEST(Attention, LongerSequenceMatchesReference) {
  // Several blocks per sequence in both directions, GQA: exercises the per-thread dQ path
  // (few (sequence, kv head) groups) and the group-owned one.
  expect_matches_reference({300, 2, 1, 32, true});
  expect_matches_reference({300, 8, 4, 32, false, {0, 150, 300}});
}

TEST(Attention, ThreadCountDoesNotChangeResults) {
  // One thread: every group owns its dQ rows; three threads on one (sequence, kv head) group:
  // key blocks run in parallel and dQ is summed from per-thread buffers.
  const Case c{300, 3, 1, 24, true};
  const Inputs in(c, 5);
  const int saved = num_threads();
  set_num_threads(1);
  const Outputs one = run(c, in, false);
  set_num_threads(3);
  const Outputs three = run(c, in, false);
  set_num_threads(saved);
  EXPECT_TRUE(allclose(three.out, one.out, 1e-6, 1e-7));
  EXPECT_TRUE(allclose(three.dq, one.dq, 1e-5, 1e-6));
  EXPECT_TRUE(allclose(three.dk, one.dk, 1e-6, 1e-7));
  EXPECT_TRUE(allclose(three.dv, one.dv, 1e-6, 1e-7));
}

TEST(Attention, FiniteDifferences) {
  // loss = dot(out, w): backward with dout = w gives dloss/dq, dk, dv.
  for (const Case& c : {Case{6, 2, 1, 3, true}, Case{6, 2, 1, 3, false, {0, 2, 6}},
                        Case{5, 4, 2, 4, true, {}, 1, 0.7f}}) {
    SCOPED_TRACE(c.str());
    Inputs in(c, 11);
    const Outputs g = run(c, in, false);
    const Tensor out = Tensor::empty({c.T, c.NH, c.HD}), lse = Tensor::empty({c.T, c.NH});
    const auto loss = [&] {
      attention_forward({.q = in.q,
                         .k = in.k,
                         .v = in.v,
                         .cu_seqlens = in.cu,
                         .batch = c.batch,
                         .causal = c.causal,
                         .scale = c.scale,
                         .out = out,
                         .lse = lse});
      return testing::dot(out, in.dout);
    };
    EXPECT_TRUE(testing::finite_difference_check(loss, in.q, g.dq)) << "dq";
    EXPECT_TRUE(testing::finite_difference_check(loss, in.k, g.dk)) << "dk";
    EXPECT_TRUE(testing::finite_difference_check(loss, in.v, g.dv)) << "dv";
  }
}

TEST(Attention, Exp2MatchesStd) {
  float worst = 0.f;
  for (float x = -125.f; x < 127.f; x += 0.0123f) {
    const double want = std::exp2(static_cast<double>(x));
    worst = std::max(worst, static_cast<float>(std::abs(cpu::attn::exp2_approx(x) - want) / want));
  }
  EXPECT_LT(worst, 3e-7f);  // about 2.5 ulp (f32 ulp is 1.19e-7 relative at worst)
  EXPECT_EQ(cpu::attn::exp2_approx(-std::numeric_limits<float>::infinity()), 0.f);
  EXPECT_EQ(cpu::attn::exp2_approx(-1000.f), 0.f);
  EXPECT_EQ(cpu::attn::exp2_approx(0.f), 1.f);
#if defined(__AVX512F__)
  float vworst = 0.f;
  alignas(64) float xs[16], ys[16];
  for (float x0 = -125.f; x0 < 127.f; x0 += 0.0123f * 16) {
    for (int i = 0; i < 16; ++i) xs[i] = x0 + 0.0123f * i;
    _mm512_store_ps(ys, cpu::attn::exp2_ps(_mm512_load_ps(xs)));
    for (int i = 0; i < 16; ++i) {
      const double want = std::exp2(static_cast<double>(xs[i]));
      vworst = std::max(vworst, static_cast<float>(std::abs(ys[i] - want) / want));
      ASSERT_EQ(ys[i], cpu::attn::exp2_approx(xs[i])) << xs[i];  // same formula, same rounding
    }
  }
  EXPECT_LT(vworst, 3e-7f);
  for (int i = 0; i < 16; ++i) xs[i] = i % 2 ? -std::numeric_limits<float>::infinity() : -500.f;
  _mm512_store_ps(ys, cpu::attn::exp2_ps(_mm512_load_ps(xs)));
  for (int i = 0; i < 16; ++i) EXPECT_EQ(ys[i], 0.f);
#endif
}

// Runs forward on args built from a valid case after `edit`, expecting an error naming attention.
template <class Edit>
void expect_error(Edit edit, const std::string& needle) {
  const Case c{8, 4, 2, 8, true};
  const Inputs in(c);
  const Outputs o{Tensor::empty({8, 4, 8}), Tensor::empty({8, 4}), Tensor::empty({8, 4, 8}),
                  Tensor::empty({8, 2, 8}), Tensor::empty({8, 2, 8})};
  AttentionArgs a = make_args(c, in, o);
  Tensor keep = edit(a);  // keeps a replacement tensor alive
  for (bool backward : {false, true}) {
    try {
      backward ? attention_backward(a) : attention_forward(a);
      ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("attention"), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  }
}

TEST(Attention, BadInput) {
  expect_error(
      [](AttentionArgs& a) {  // NH % NKV != 0
        Tensor k = Tensor::zeros({8, 3, 8});
        a.k = k;
        return k;
      },
      "(8, 3, 8)");
  expect_error(
      [](AttentionArgs& a) {  // HD > 256
        Tensor q = Tensor::zeros({8, 4, 257});
        a.q = q;
        return q;
      },
      "257");
  expect_error(
      [](AttentionArgs& a) {  // k/v head dim differs from q
        Tensor v = Tensor::zeros({8, 2, 7});
        a.v = v;
        return v;
      },
      "(8, 2, 7)");
  expect_error(
      [](AttentionArgs& a) {  // cu_seqlens does not end at T
        Tensor cu = Tensor::from<int32_t>({3}, std::vector<int32_t>{0, 3, 7});
        a.cu_seqlens = cu;
        return cu;
      },
      "ends at 7");
  expect_error(
      [](AttentionArgs& a) {  // cu_seqlens decreasing
        Tensor cu = Tensor::from<int32_t>({4}, std::vector<int32_t>{0, 5, 3, 8});
        a.cu_seqlens = cu;
        return cu;
      },
      "non-decreasing");
  expect_error(
      [](AttentionArgs& a) {  // cu_seqlens not starting at 0
        Tensor cu = Tensor::from<int32_t>({2}, std::vector<int32_t>{1, 8});
        a.cu_seqlens = cu;
        return cu;
      },
      "cu_seqlens[0]");
  expect_error(
      [](AttentionArgs& a) {  // cu_seqlens of the wrong dtype
        Tensor cu = Tensor::from<int64_t>({2}, std::vector<int64_t>{0, 8});
        a.cu_seqlens = cu;
        return cu;
      },
      "i64");
  expect_error(
      [](AttentionArgs& a) {  // T % batch
        a.batch = 3;
        return Tensor();
      },
      "batch = 3");
  expect_error(
      [](AttentionArgs& a) {  // bf16 q
        Tensor q = Tensor::zeros({8, 4, 8}, DType::bf16);
        a.q = q;
        return q;
      },
      "bf16");
  expect_error(
      [](AttentionArgs& a) {  // wrong lse shape
        Tensor lse = Tensor::zeros({8, 2});
        a.lse = lse;
        return lse;
      },
      "lse");
  expect_error(
      [](AttentionArgs& a) {  // q not 3-D
        Tensor q = Tensor::zeros({32, 8});
        a.q = q;
        return q;
      },
      "(32, 8)");
  // Backward-only outputs.
  const Case c{8, 4, 2, 8, true};
  const Inputs in(c);
  const Tensor out = Tensor::empty({8, 4, 8}), lse = Tensor::empty({8, 4}),
               dq = Tensor::empty({8, 4, 8}), dk = Tensor::empty({8, 4, 8}),
               dv = Tensor::empty({8, 2, 8});
  try {
    attention_backward({.q = in.q,
                        .k = in.k,
                        .v = in.v,
                        .out = out,
                        .lse = lse,
                        .dout = in.dout,
                        .dq = dq,
                        .dk = dk,
                        .dv = dv});
    ADD_FAILURE() << "no error for a dk of the wrong shape";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attention_backward: dk"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace foundry
