#include "foundry/ops/moe_rows.h"

#include "foundry/backend/cpu/ref/activation_ref.h"
#include "foundry/backend/cpu/ref/moe_rows_ref.h"
#include <cmath>

#include "testing.h"

namespace foundry {
namespace {

using testing::nan_filled;
using testing::randn;

TEST(RowScale, MatchesReferenceAndFiniteDifferences) {
  for (int64_t N : {1, 7, 61})
    for (int64_t F : {1, 13, 257}) {
      SCOPED_TRACE(::testing::Message() << N << "x" << F);
      Tensor x = randn({N, F}, 1), s = randn({N}, 2), dy = randn({N, F}, 3);
      Tensor y = nan_filled({N, F}), y_ref = Tensor::empty({N, F});
      row_scale_forward({.x = x, .s = s, .y = y});
      ref::row_scale_forward({.x = x, .s = s, .y = y_ref});
      EXPECT_TRUE(testing::allclose(y, y_ref, 1e-6, 1e-7));
      Tensor dx = nan_filled({N, F}), ds = nan_filled({N}), dx_ref = Tensor::empty({N, F}), ds_ref = Tensor::empty({N});
      row_scale_backward({.x = x, .s = s, .dy = dy, .dx = dx, .ds = ds});
      ref::row_scale_backward({.x = x, .s = s, .dy = dy, .dx = dx_ref, .ds = ds_ref});
      EXPECT_TRUE(testing::allclose(dx, dx_ref, 1e-6, 1e-7));
      // ds is an F-term f32 dot product: Higham's bound |err| <= F u sum_j |dy x| (u = 2^-24).
      for (int64_t r = 0; r < N; ++r) {
        double abs_sum = 0;
        for (int64_t j = 0; j < F; ++j) abs_sum += std::abs(dy.ptr<float>()[r * F + j] * x.ptr<float>()[r * F + j]);
        EXPECT_LE(std::abs(ds.ptr<float>()[r] - ds_ref.ptr<float>()[r]), F * 0x1p-24 * abs_sum + 1e-30) << r;
      }
      if (N * F <= 61 * 13) {
        auto loss = [&] {
          Tensor out = Tensor::empty({N, F});
          row_scale_forward({.x = x, .s = s, .y = out});
          return testing::dot(out, dy);
        };
        EXPECT_TRUE(testing::finite_difference_check(loss, x, dx));
        EXPECT_TRUE(testing::finite_difference_check(loss, s, ds));
      }
    }
}

TEST(RowScale, BackwardMayOverwriteDy) {
  Tensor x = randn({5, 9}, 1), s = randn({5}, 2), dy = randn({5, 9}, 3);
  Tensor dx = Tensor::empty({5, 9}), ds = Tensor::empty({5}), ds2 = Tensor::empty({5});
  row_scale_backward({.x = x, .s = s, .dy = dy, .dx = dx, .ds = ds});
  row_scale_backward({.x = x, .s = s, .dy = dy, .dx = dy, .ds = ds2});
  EXPECT_TRUE(testing::allclose(dy, dx, 0, 0));
  EXPECT_TRUE(testing::allclose(ds2, ds, 0, 0));
}

// weighted_swiglu = row_scale(swiglu(h), s) in one pass; backward = row_scale_backward then
// swiglu_backward, from the naive references.
TEST(WeightedSwiglu, MatchesSwigluThenRowScaleAndFiniteDifferences) {
  for (int64_t N : {1, 7, 61})
    for (int64_t F : {1, 13, 257}) {
      SCOPED_TRACE(::testing::Message() << N << "x" << F);
      Tensor h = randn({N, 2 * F}, 1), s = randn({N}, 2), dy = randn({N, F}, 3);
      Tensor a = Tensor::empty({N, F}), y_ref = Tensor::empty({N, F}), y = nan_filled({N, F});
      ref::swiglu_forward({.x = h, .y = a});
      ref::row_scale_forward({.x = a, .s = s, .y = y_ref});
      weighted_swiglu_forward({.h = h, .s = s, .y = y});
      EXPECT_TRUE(testing::allclose(y, y_ref, 1e-5, 1e-6));
      Tensor da = Tensor::empty({N, F}), ds_ref = Tensor::empty({N}), dh_ref = Tensor::empty({N, 2 * F});
      ref::row_scale_backward({.x = a, .s = s, .dy = dy, .dx = da, .ds = ds_ref});
      ref::swiglu_backward({.x = h, .dy = da, .dx = dh_ref});
      Tensor dh = nan_filled({N, 2 * F}), ds = nan_filled({N});
      weighted_swiglu_backward({.h = h, .s = s, .dy = dy, .dh = dh, .ds = ds});
      EXPECT_TRUE(testing::allclose(dh, dh_ref, 1e-5, 1e-6));
      EXPECT_TRUE(testing::allclose(ds, ds_ref, 1e-5, 1e-5));
      if (N * F <= 61 * 13) {
        auto loss = [&] {
          Tensor out = Tensor::empty({N, F});
          weighted_swiglu_forward({.h = h, .s = s, .y = out});
          return testing::dot(out, dy);
        };
        EXPECT_TRUE(testing::finite_difference_check(loss, h, dh));
        EXPECT_TRUE(testing::finite_difference_check(loss, s, ds));
      }
    }
  Tensor h = randn({4, 6}, 1), y = Tensor::empty({4, 3});
  EXPECT_ERROR_MENTIONS(weighted_swiglu_forward({.h = h, .s = Tensor::empty({5}), .y = y}), "weighted_swiglu_forward",
                        "s", "(5,)", "(4,)");
}

TEST(ProbsScatter, PutsEachRowGradientAtItsTokenAndExpert) {
  // T = 3 tokens, E = 3 experts; rows expert-major: e0 <- t0, t2; e1 <- (none); e2 <- t0, t1.
  const std::vector<int32_t> tok{0, 2, 0, 1};
  const std::vector<int64_t> counts{2, 0, 2};
  Tensor row_token = Tensor::from<int32_t>({4}, tok), tpe = Tensor::from<int64_t>({3}, counts);
  Tensor drow = Tensor::from({4}, {1, 2, 3, 4});
  Tensor dprobs = nan_filled({3, 3});
  probs_scatter({.drow = drow, .row_token = row_token, .tokens_per_expert = tpe, .dprobs = dprobs});
  EXPECT_EQ(dprobs.to_vector(), (std::vector<float>{1, 0, 3, 0, 0, 4, 2, 0, 0}));
  const std::vector<int64_t> bad_counts{2, 0, 1};
  EXPECT_ERROR_MENTIONS(probs_scatter({.drow = drow, .row_token = row_token,
                                       .tokens_per_expert = Tensor::from<int64_t>({3}, bad_counts),
                                       .dprobs = dprobs}),
                        "probs_scatter", "sums to 3", "4 rows");
}

TEST(RowScale, RejectsMismatchedShapes) {
  Tensor x = randn({4, 3}, 1), y = Tensor::empty({4, 3});
  EXPECT_ERROR_MENTIONS(row_scale_forward({.x = x, .s = Tensor::empty({5}), .y = y}), "row_scale_forward", "s",
                        "(5,)", "(4,)");
}

}  // namespace
}  // namespace foundry
