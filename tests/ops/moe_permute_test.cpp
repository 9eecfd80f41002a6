// MoE permute / unpermute: vs the reference (Megatron's stable argsort) on odd/prime shapes
// with empty experts, unrouted tokens and tokens routed to several experts; a hand-checked
// order; permute -> unpermute identities; finite differences; padding rows (-1); bit-identical
// combines across thread counts; padded segments (pad_multiple, capacity); bad input.
#include "foundry/ops/moe_permute.h"

#include <numeric>
#include <vector>

#include "foundry/backend/cpu/ref/moe_permute_ref.h"
#include "foundry/core/threads.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::allclose;
using testing::dot;
using testing::finite_difference_check;
using testing::randn;

// (T, E) map: each token goes to k distinct experts chosen at random (k = -1: each entry is an
// independent coin flip, so some tokens go nowhere); expert `empty` (if >= 0) receives nothing.
Tensor random_map(int64_t T, int64_t E, int64_t k, int64_t empty, uint64_t seed) {
  const Tensor u = testing::randu({T, E}, seed, 0.f, 1.f);
  const float* p = u.ptr<float>();
  std::vector<uint8_t> m(static_cast<size_t>(T * E), 0);
  for (int64_t t = 0; t < T; ++t) {
    if (k < 0) {
      for (int64_t e = 0; e < E; ++e) m[t * E + e] = p[t * E + e] < 0.4f;
    } else {
      std::vector<int64_t> order(static_cast<size_t>(E));
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return p[t * E + x] < p[t * E + y]; });
      int64_t taken = 0;
      for (int64_t e : order)
        if (taken < k && e != empty) m[t * E + e] = 1, ++taken;
    }
    if (empty >= 0) m[t * E + empty] = 0;
  }
  return Tensor::from<uint8_t>({T, E}, m);
}

struct Permuted {
  Tensor permuted, pprobs, row_token, tpe;
};

Permuted run_permute(const Tensor& map, const Tensor& probs, const Tensor& x, bool reference,
                     int64_t pad_multiple = 0, int64_t capacity = 0) {
  const int64_t N = moe_permute_num_rows(map, pad_multiple, capacity), E = map.size(1), H = x.size(1);
  Permuted p{testing::nan_filled({N, H}), probs.defined() ? testing::nan_filled({N}) : Tensor(),
             Tensor::full({N}, -7.f, DType::i32), Tensor::full({E}, -7.f, DType::i64)};
  const MoePermuteArgs args{.routing_map = map, .probs = probs, .x = x, .permuted = p.permuted,
                            .permuted_probs = p.pprobs, .row_token = p.row_token,
                            .tokens_per_expert = p.tpe, .pad_multiple = pad_multiple,
                            .capacity = capacity};
  if (reference) ref::moe_permute_forward(args);
  else moe_permute_forward(args);
  return p;
}

std::vector<int64_t> as_i64(const Tensor& t) {
  return std::vector<int64_t>(t.ptr<int64_t>(), t.ptr<int64_t>() + t.numel());
}
std::vector<int32_t> as_i32(const Tensor& t) {
  return std::vector<int32_t>(t.ptr<int32_t>(), t.ptr<int32_t>() + t.numel());
}

TEST(MoePermute, MatchesReferenceOnOddShapes) {
  for (int64_t T : {1, 7, 37, 131})
    for (int64_t E : {1, 3, 8})
      for (int64_t H : {1, 5, 67})
        for (int64_t k : {-1, 1, 2})
          for (int pad : {0, 1, 2}) {  // none, pad_multiple 4, capacity (max count + 2)
            const bool with_probs = pad != 1 || T % 2 == 1;
            if (k > E) continue;
            const int64_t empty = E > 2 ? E / 2 : -1;
            SCOPED_TRACE(::testing::Message() << "T " << T << " E " << E << " H " << H << " k " << k
                                              << " probs " << with_probs << " pad " << pad);
            const uint64_t seed = static_cast<uint64_t>(T * 1000 + E * 100 + H * 10 + k + 3);
            const Tensor map = random_map(T, E, k, empty, seed);
            int64_t max_count = 0;
            for (int64_t e = 0; e < E; ++e) {
              int64_t c = 0;
              for (int64_t t = 0; t < T; ++t) c += map.ptr<uint8_t>()[t * E + e];
              max_count = std::max(max_count, c);
            }
            const int64_t pad_multiple = pad == 1 ? 4 : 0, capacity = pad == 2 ? max_count + 2 : 0;
            const Tensor probs = with_probs ? testing::randu({T, E}, seed + 1, 0.f, 1.f) : Tensor();
            const Tensor x = randn({T, H}, seed + 2);
            const Permuted got = run_permute(map, probs, x, false, pad_multiple, capacity);
            const Permuted want = run_permute(map, probs, x, true, pad_multiple, capacity);
            EXPECT_EQ(as_i32(got.row_token), as_i32(want.row_token));
            EXPECT_EQ(as_i64(got.tpe), as_i64(want.tpe));
            EXPECT_TRUE(allclose(got.permuted, want.permuted, 0, 0));
            if (with_probs) {
              EXPECT_TRUE(allclose(got.pprobs, want.pprobs, 0, 0));
            }
            if (empty >= 0) {
              EXPECT_EQ(got.tpe.ptr<int64_t>()[empty], capacity);  // 0 unless capacity-padded
            }

            const int64_t N = got.permuted.size(0);
            const Tensor dperm = randn({N, H}, seed + 3), dpp = randn({N}, seed + 4);
            Tensor dx = testing::nan_filled({T, H}), dx_ref = testing::nan_filled({T, H});
            Tensor dprobs = testing::nan_filled({T, E}), dprobs_ref = testing::nan_filled({T, E});
            MoePermuteArgs b{.routing_map = map, .row_token = got.row_token, .dpermuted = dperm,
                             .dx = dx, .dpermuted_probs = dpp, .dprobs = dprobs,
                             .pad_multiple = pad_multiple, .capacity = capacity};
            moe_permute_backward(b);
            b.dx = dx_ref;
            b.dprobs = dprobs_ref;
            ref::moe_permute_backward(b);
            EXPECT_TRUE(allclose(dx, dx_ref, 1e-6, 1e-6));
            EXPECT_TRUE(allclose(dprobs, dprobs_ref, 0, 0));

            const Tensor dout = randn({T, H}, seed + 5);
            Tensor out = testing::nan_filled({T, H}), out_ref = testing::nan_filled({T, H});
            Tensor dy = testing::nan_filled({N, H}), dy_ref = testing::nan_filled({N, H});
            moe_unpermute_forward({.y = dperm, .row_token = got.row_token, .out = out});
            ref::moe_unpermute_forward({.y = dperm, .row_token = got.row_token, .out = out_ref});
            moe_unpermute_backward({.row_token = got.row_token, .dout = dout, .dy = dy});
            ref::moe_unpermute_backward({.row_token = got.row_token, .dout = dout, .dy = dy_ref});
            EXPECT_TRUE(allclose(out, out_ref, 1e-6, 1e-6));
            EXPECT_TRUE(allclose(dy, dy_ref, 0, 0));
          }
}

// Large enough for every parallel loop (per-expert fill, row copies, combine, gather).
TEST(MoePermute, MatchesReferenceOnParallelSizes) {
  const int64_t T = 4099, E = 8, H = 9;
  const Tensor map = random_map(T, E, 2, 5, 11), probs = testing::randu({T, E}, 12, 0.f, 1.f);
  const Tensor x = randn({T, H}, 13);
  for (int64_t pad : {0, 16}) {
    const Permuted got = run_permute(map, probs, x, false, pad, 0);
    const Permuted want = run_permute(map, probs, x, true, pad, 0);
    EXPECT_EQ(as_i32(got.row_token), as_i32(want.row_token));
    EXPECT_EQ(as_i64(got.tpe), as_i64(want.tpe));
    EXPECT_TRUE(allclose(got.permuted, want.permuted, 0, 0));
    EXPECT_TRUE(allclose(got.pprobs, want.pprobs, 0, 0));
    const int64_t N = got.permuted.size(0);
    const Tensor dperm = randn({N, H}, 14);
    Tensor dx = testing::nan_filled({T, H}), dx_ref = testing::nan_filled({T, H});
    moe_permute_backward({.routing_map = map, .row_token = got.row_token, .dpermuted = dperm,
                          .dx = dx, .pad_multiple = pad});
    ref::moe_permute_backward({.routing_map = map, .row_token = got.row_token, .dpermuted = dperm,
                               .dx = dx_ref, .pad_multiple = pad});
    EXPECT_TRUE(allclose(dx, dx_ref, 1e-6, 1e-6));
    Tensor dy = testing::nan_filled({N, H}), dy_ref = testing::nan_filled({N, H});
    moe_unpermute_backward({.row_token = got.row_token, .dout = x, .dy = dy});
    ref::moe_unpermute_backward({.row_token = got.row_token, .dout = x, .dy = dy_ref});
    EXPECT_TRUE(allclose(dy, dy_ref, 0, 0));
  }
}

// Hand-checked: rows sorted by expert, tokens in order within an expert.
TEST(MoePermute, ExpertMajorStableOrder) {
  // token:  0: e2      1: e0,e2   2: none   3: e0,e1,e2   4: e2 (expert 3 empty)
  const Tensor map = Tensor::from<uint8_t>({5, 4}, std::vector<uint8_t>{0, 0, 1, 0,  1, 0, 1, 0,
                                                                        0, 0, 0, 0,  1, 1, 1, 0,
                                                                        0, 0, 1, 0});
  std::vector<float> pv(20);
  std::iota(pv.begin(), pv.end(), 0.f);  // probs[t, e] = 4 t + e
  const Tensor probs = Tensor::from<float>({5, 4}, pv);
  std::vector<float> xv(10);
  std::iota(xv.begin(), xv.end(), 0.f);  // x[t] = (2 t, 2 t + 1)
  const Tensor x = Tensor::from<float>({5, 2}, xv);
  const Permuted p = run_permute(map, probs, x, false);
  EXPECT_EQ(as_i32(p.row_token), (std::vector<int32_t>{1, 3, 3, 0, 1, 3, 4}));
  EXPECT_EQ(as_i64(p.tpe), (std::vector<int64_t>{2, 1, 4, 0}));
  EXPECT_EQ(p.pprobs.to_vector(), (std::vector<float>{4, 12, 13, 2, 6, 14, 18}));
  EXPECT_EQ(p.permuted.to_vector(),
            (std::vector<float>{2, 3, 6, 7, 6, 7, 0, 1, 2, 3, 6, 7, 8, 9}));
}

// Padding rows follow each expert's real rows: zeros, probs 0, row_token -1.
TEST(MoePermute, PaddedSegments) {
  const Tensor map = Tensor::from<uint8_t>({5, 4}, std::vector<uint8_t>{0, 0, 1, 0,  1, 0, 1, 0,
                                                                        0, 0, 0, 0,  1, 1, 1, 0,
                                                                        0, 0, 1, 0});
  const Tensor probs = testing::randu({5, 4}, 1, 0.5f, 1.f), x = randn({5, 2}, 2);
  const Permuted p = run_permute(map, probs, x, false, 3, 0);
  EXPECT_EQ(as_i32(p.row_token), (std::vector<int32_t>{1, 3, -1, 3, -1, -1, 0, 1, 3, 4, -1, -1}));
  EXPECT_EQ(as_i64(p.tpe), (std::vector<int64_t>{3, 3, 6, 0}));
  for (int64_t r : {2, 4, 5, 10, 11}) {
    EXPECT_EQ(p.pprobs.ptr<float>()[r], 0.f);
    EXPECT_EQ(p.permuted.ptr<float>()[2 * r], 0.f);
    EXPECT_EQ(p.permuted.ptr<float>()[2 * r + 1], 0.f);
  }
  const Permuted c = run_permute(map, probs, x, false, 0, 5);
  EXPECT_EQ(as_i64(c.tpe), (std::vector<int64_t>{5, 5, 5, 5}));
  EXPECT_EQ(as_i32(c.row_token)[10], 0);  // expert 2's first row
  // Unpermute of the padded rows gives each token back k times, the padding adds nothing.
  Tensor out = testing::nan_filled({5, 2});
  moe_unpermute_forward({.y = p.permuted, .row_token = p.row_token, .out = out});
  const int k[] = {1, 2, 0, 3, 1};
  for (int t = 0; t < 5; ++t)
    for (int j = 0; j < 2; ++j)
      EXPECT_NEAR(out.ptr<float>()[2 * t + j], k[t] * x.ptr<float>()[2 * t + j], 1e-6);
  EXPECT_ERROR_MENTIONS(moe_permute_num_rows(map, 0, 3), "expert 2 has 4 tokens", "capacity 3");
  EXPECT_ERROR_MENTIONS(moe_permute_num_rows(map, 4, 8), "pad_multiple 4 and capacity 8",
                        "exclusive");
  EXPECT_ERROR_MENTIONS(moe_permute_num_rows(map, -1, 0), "must not be negative");
}

// Top-1 routing visits every token once: unpermute(permute(x)) = x exactly; with top-k every
// token that is routed comes back k times; unrouted tokens come back as zeros.
TEST(MoePermute, PermuteThenUnpermute) {
  for (int64_t k : {1, 2, 3}) {
    const int64_t T = 53, E = 7, H = 19;
    const Tensor map = random_map(T, E, k, 4, 10 + k);
    const Tensor x = randn({T, H}, 20 + k);
    const Permuted p = run_permute(map, Tensor(), x, false);
    Tensor out = testing::nan_filled({T, H});
    moe_unpermute_forward({.y = p.permuted, .row_token = p.row_token, .out = out});
    Tensor want = x.clone();
    for (int64_t i = 0; i < want.numel(); ++i) want.ptr<float>()[i] *= static_cast<float>(k);
    EXPECT_TRUE(allclose(out, want, k == 1 ? 0 : 1e-6, 0)) << "k " << k;
    // The gather (unpermute backward) of x is permute's output again.
    Tensor back = testing::nan_filled(p.permuted.shape());
    moe_unpermute_backward({.row_token = p.row_token, .dout = x, .dy = back});
    EXPECT_TRUE(allclose(back, p.permuted, 0, 0));
  }
  // Unrouted tokens.
  const Tensor map = random_map(41, 5, -1, 2, 99), x = randn({41, 3}, 98);
  const Permuted p = run_permute(map, Tensor(), x, false);
  Tensor out = testing::nan_filled({41, 3});
  moe_unpermute_forward({.y = p.permuted, .row_token = p.row_token, .out = out});
  Tensor out_ref = testing::nan_filled({41, 3});
  ref::moe_unpermute_forward({.y = p.permuted, .row_token = p.row_token, .out = out_ref});
  EXPECT_TRUE(allclose(out, out_ref, 1e-6, 0));
}

TEST(MoePermute, EmptyRoutingMap) {
  const Tensor map = Tensor::zeros({6, 3}, DType::u8), x = randn({6, 4}, 1);
  ASSERT_EQ(moe_permute_num_rows(map), 0);
  const Permuted p = run_permute(map, testing::randu({6, 3}, 2, 0.f, 1.f), x, false);
  EXPECT_EQ(as_i64(p.tpe), (std::vector<int64_t>{0, 0, 0}));
  Tensor dx = testing::nan_filled({6, 4});
  moe_permute_backward({.routing_map = map, .row_token = p.row_token,
                        .dpermuted = Tensor::empty({0, 4}), .dx = dx});
  EXPECT_TRUE(allclose(dx, Tensor::zeros({6, 4}), 0, 0));
}

TEST(MoePermute, FiniteDifferences) {
  const int64_t T = 11, E = 5, H = 7;
  const Tensor map = random_map(T, E, 2, 1, 5);
  const Tensor probs = testing::randu({T, E}, 6, 0.f, 1.f), x = randn({T, H}, 7);
  const int64_t N = moe_permute_num_rows(map);
  const Tensor w = randn({N, H}, 8), wp = randn({N}, 9);
  Tensor perm = Tensor::empty({N, H}), pp = Tensor::empty({N}), rt = Tensor::empty({N}, DType::i32),
         tpe = Tensor::empty({E}, DType::i64);
  const MoePermuteArgs fwd{.routing_map = map, .probs = probs, .x = x, .permuted = perm,
                           .permuted_probs = pp, .row_token = rt, .tokens_per_expert = tpe};
  auto loss = [&] {
    moe_permute_forward(fwd);
    return dot(perm, w) + dot(pp, wp);
  };
  loss();
  Tensor dx = Tensor::empty({T, H}), dprobs = Tensor::empty({T, E});
  moe_permute_backward({.routing_map = map, .row_token = rt, .dpermuted = w, .dx = dx,
                        .dpermuted_probs = wp, .dprobs = dprobs});
  EXPECT_TRUE(finite_difference_check(loss, x, dx, 1e-2, 2e-2, 2e-3, 77));
  EXPECT_TRUE(finite_difference_check(loss, probs, dprobs, 1e-2, 2e-2, 2e-3, 55));

  // unpermute: d/dy of sum(out * wo) (with a padding row).
  std::vector<int32_t> rows = as_i32(rt);
  rows.push_back(-1);
  const Tensor row_token = Tensor::from<int32_t>({N + 1}, rows);
  const Tensor y = randn({N + 1, H}, 10), wo = randn({T, H}, 11);
  Tensor out = Tensor::empty({T, H}), dy = Tensor::empty({N + 1, H});
  auto uloss = [&] {
    moe_unpermute_forward({.y = y, .row_token = row_token, .out = out});
    return dot(out, wo);
  };
  moe_unpermute_backward({.row_token = row_token, .dout = wo, .dy = dy});
  EXPECT_TRUE(finite_difference_check(uloss, y, dy, 1e-2, 2e-2, 2e-3, 200));
}

// Padding rows (row_token = -1) contribute nothing and get zero gradient.
TEST(MoePermute, UnpermutePaddingRows) {
  const Tensor row_token = Tensor::from<int32_t>({5}, std::vector<int32_t>{2, -1, 0, 2, -1});
  const Tensor y = randn({5, 3}, 1), dout = randn({3, 3}, 2);
  Tensor out = testing::nan_filled({3, 3}), out_ref = testing::nan_filled({3, 3});
  moe_unpermute_forward({.y = y, .row_token = row_token, .out = out});
  ref::moe_unpermute_forward({.y = y, .row_token = row_token, .out = out_ref});
  EXPECT_TRUE(allclose(out, out_ref, 1e-6, 0));
  for (int j = 0; j < 3; ++j) EXPECT_EQ(out.ptr<float>()[3 + j], 0.f);  // token 1: no rows
  Tensor dy = testing::nan_filled({5, 3});
  moe_unpermute_backward({.row_token = row_token, .dout = dout, .dy = dy});
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(dy.ptr<float>()[3 + j], 0.f);
    EXPECT_EQ(dy.ptr<float>()[12 + j], 0.f);
    EXPECT_EQ(dy.ptr<float>()[j], dout.ptr<float>()[6 + j]);
  }
}

TEST(MoePermute, CombineIsBitIdenticalAcrossThreadCounts) {
  const Tensor map = random_map(1031, 8, 3, -1, 3);
  const Permuted p = run_permute(map, Tensor(), randn({1031, 67}, 4), false);
  const Tensor y = randn(p.permuted.shape(), 5);
  const int threads = num_threads();
  Tensor a = Tensor::empty({1031, 67}), b = Tensor::empty({1031, 67});
  moe_unpermute_forward({.y = y, .row_token = p.row_token, .out = a});
  set_num_threads(1);
  moe_unpermute_forward({.y = y, .row_token = p.row_token, .out = b});
  set_num_threads(threads);
  EXPECT_TRUE(allclose(a, b, 0, 0));
}

TEST(MoePermute, BadInput) {
  const Tensor map = random_map(7, 3, 2, -1, 1), x = randn({7, 4}, 2);
  const int64_t N = 14;
  Tensor perm = Tensor::empty({N, 4}), rt = Tensor::empty({N}, DType::i32),
         tpe = Tensor::empty({3}, DType::i64);
  MoePermuteArgs a{.routing_map = map, .x = x, .permuted = perm, .row_token = rt,
                   .tokens_per_expert = tpe};
  moe_permute_forward(a);  // fine

  MoePermuteArgs bad = a;
  bad.permuted = Tensor::empty({13, 4});
  bad.row_token = Tensor::empty({13}, DType::i32);
  EXPECT_ERROR_MENTIONS(moe_permute_forward(bad), "moe_permute_forward", "needs 14 rows", "13 rows");
  Tensor two = map.clone();
  two.ptr<uint8_t>()[4] = 2;
  bad = a;
  bad.routing_map = two;
  EXPECT_ERROR_MENTIONS(moe_permute_forward(bad), "routing_map[1, 1] is 2");
  bad = a;
  bad.routing_map = Tensor::zeros({7, 3});
  EXPECT_ERROR_MENTIONS(moe_permute_forward(bad), "moe_permute_forward", "routing_map", "u8");
  bad = a;
  bad.x = randn({6, 4}, 3);
  EXPECT_ERROR_MENTIONS(moe_permute_forward(bad), "x must be (T, H)", "(6, 4)");
  bad = a;
  bad.permuted = Tensor::empty({N, 5});
  EXPECT_ERROR_MENTIONS(moe_permute_forward(bad), "permuted", "(14, 5)");
  bad = a;
  bad.permuted_probs = Tensor::empty({N});
  EXPECT_ERROR_MENTIONS(moe_permute_forward(bad), "permuted_probs", "without probs");
  bad = a;
  bad.probs = randn({7, 4}, 4);
  bad.permuted_probs = Tensor::empty({N});
  EXPECT_ERROR_MENTIONS(moe_permute_forward(bad), "probs", "(7, 4)");
  bad = a;
  bad.tokens_per_expert = Tensor::empty({3}, DType::i32);
  EXPECT_ERROR_MENTIONS(moe_permute_forward(bad), "tokens_per_expert", "i64");

  Tensor dx = Tensor::empty({7, 4});
  EXPECT_ERROR_MENTIONS(moe_permute_backward({.routing_map = map, .row_token = rt,
                                              .dpermuted = Tensor::empty({N, 4}),
                                              .dx = Tensor::empty({7, 5})}),
                        "moe_permute_backward", "dx");
  EXPECT_ERROR_MENTIONS(moe_permute_backward({.routing_map = map, .row_token = rt,
                                              .dpermuted = Tensor::empty({N, 4}), .dx = dx,
                                              .dprobs = Tensor::empty({7, 3})}),
                        "dprobs", "without dpermuted_probs");

  const Tensor bad_rt = Tensor::from<int32_t>({2}, std::vector<int32_t>{0, 7});
  EXPECT_ERROR_MENTIONS(moe_unpermute_forward({.y = randn({2, 4}, 5), .row_token = bad_rt,
                                               .out = Tensor::empty({7, 4})}),
                        "moe_unpermute_forward", "row_token[1] = 7", "[0, 7)");
  EXPECT_ERROR_MENTIONS(moe_unpermute_backward({.row_token = bad_rt, .dout = randn({7, 4}, 6),
                                                .dy = Tensor::empty({2, 4})}),
                        "moe_unpermute_backward", "row_token[1] = 7");
  EXPECT_ERROR_MENTIONS(moe_unpermute_forward({.y = randn({3, 4}, 5), .row_token = bad_rt,
                                               .out = Tensor::empty({7, 4})}),
                        "row_token", "(2,)", "(3,)");
  EXPECT_ERROR_MENTIONS(moe_unpermute_forward({.y = randn({2, 5}, 5), .row_token = bad_rt,
                                               .out = Tensor::empty({7, 4})}),
                        "y must be (N, 4)", "(2, 5)");
}

}  // namespace
}  // namespace foundry
