// Fused cross-entropy (ops/loss.h) against the f64 reference (materialised softmax), by finite
// differences, in place, and on bad input; the vectorised exp against std::exp.
#include "foundry/ops/loss.h"

#include <cmath>
#include <limits>

#include "foundry/backend/cpu/loss.h"
#include "foundry/backend/cpu/ref/loss_ref.h"
#include "foundry/core/threads.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::allclose;
using testing::randn;

// Targets (N): a spread of classes; with `ignore`, every third row (from row 1) is ignore_index.
Tensor make_targets(int64_t N, int64_t V, bool ignore, int32_t ignore_index = -100) {
  Tensor t = Tensor::empty({N}, DType::i32);
  int32_t* p = t.ptr<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    p[n] = ignore && n % 3 == 1 ? ignore_index : static_cast<int32_t>((n * 7919 + 13) % V);
  return t;
}

struct CeCase {
  bool ignore;
  float z_loss_coeff;
  double token_count;
  float grad_scale;
};

TEST(CrossEntropy, MatchesReferenceOnOddShapes) {
  const CeCase cases[] = {{false, 0.f, 0.0, 1.f}, {true, 1e-2f, 0.0, 1.f}, {true, 1e-2f, 50.0, 0.37f},
                          {false, 0.f, 7.0, 2.f}};
  uint64_t seed = 1;
  for (int64_t N : {1, 3, 37})
    for (int64_t V : {1, 2, 7, 61, 4099, 10007})
      for (const CeCase& c : cases) {
        SCOPED_TRACE(::testing::Message() << "N=" << N << " V=" << V << " ignore=" << c.ignore
                                          << " z=" << c.z_loss_coeff << " D=" << c.token_count
                                          << " scale=" << c.grad_scale);
        const Tensor logits = randn({N, V}, seed++, 3.f);
        const Tensor targets = make_targets(N, V, c.ignore);
        Tensor dlogits = Tensor::full({N, V}, 7.f), losses = Tensor::full({N}, 7.f);
        Tensor dlogits_ref = Tensor::empty({N, V}), losses_ref = Tensor::empty({N});
        const CrossEntropyArgs args{.logits = logits, .targets = targets, .z_loss_coeff = c.z_loss_coeff,
                                    .token_count = c.token_count, .grad_scale = c.grad_scale,
                                    .dlogits = dlogits, .losses = losses};
        CrossEntropyArgs ref_args = args;
        ref_args.dlogits = dlogits_ref;
        ref_args.losses = losses_ref;
        const CrossEntropyResult got = cross_entropy_fused(args);
        const CrossEntropyResult want = ref::cross_entropy(ref_args);

        EXPECT_EQ(got.num_valid, want.num_valid);
        // Per row, lse is off by at most ~2e-7 (f32 exp terms summed in f64).
        EXPECT_NEAR(got.loss, want.loss, 1e-6 * (1 + std::abs(want.loss)));
        EXPECT_NEAR(got.z_loss, want.z_loss, 1e-6 * (1 + std::abs(want.z_loss)));
        EXPECT_TRUE(allclose(losses, losses_ref, 1e-6, 1e-6));
        // softmax_v = exp(x_v - m) / s: x_v - m rounds to f32 (|x_v - m| < 32 here: <= 1.9e-6
        // absolute, the same relative error in exp), plus exp's 1.2e-7 and three f32 roundings.
        // The target's entry subtracts grad_scale / D, so its absolute error scales with that.
        const double g = c.grad_scale / (c.token_count > 0 ? c.token_count : std::max<int64_t>(want.num_valid, 1));
        EXPECT_TRUE(allclose(dlogits, dlogits_ref, 3e-6, 3e-6 * std::abs(g) * (1 + 2 * c.z_loss_coeff * 40)));
      }
}

TEST(CrossEntropy, InPlaceMatchesSeparateOutput) {
  for (int64_t V : {7, 4099, 10007}) {
    const int64_t N = 37;
    const Tensor logits = randn({N, V}, 11, 2.f);
    const Tensor targets = make_targets(N, V, true);
    const Tensor dlogits = Tensor::empty({N, V}), losses = Tensor::empty({N});
    const CrossEntropyArgs args{.logits = logits, .targets = targets, .z_loss_coeff = 1e-3f,
                                .grad_scale = 0.5f, .dlogits = dlogits, .losses = losses};
    const CrossEntropyResult separate = cross_entropy_fused(args);

    const Tensor inplace = logits.clone(), losses2 = Tensor::empty({N});
    CrossEntropyArgs args2 = args;
    args2.logits = inplace;
    args2.dlogits = inplace;
    args2.losses = losses2;
    const CrossEntropyResult aliased = cross_entropy_fused(args2);
    EXPECT_EQ(aliased.loss, separate.loss) << V;
    EXPECT_EQ(aliased.z_loss, separate.z_loss) << V;
    EXPECT_TRUE(allclose(inplace, dlogits, 0, 0)) << V;
    EXPECT_TRUE(allclose(losses2, losses, 0, 0)) << V;
  }
}

TEST(CrossEntropy, LossOnlyAndOptionalOutputs) {
  const int64_t N = 13, V = 61;
  const Tensor logits = randn({N, V}, 3);
  const Tensor targets = make_targets(N, V, true);
  const Tensor dlogits = Tensor::empty({N, V});
  const CrossEntropyResult full = cross_entropy_fused(
      {.logits = logits, .targets = targets, .z_loss_coeff = 1e-2f, .dlogits = dlogits});
  const CrossEntropyResult loss_only =
      cross_entropy_fused({.logits = logits, .targets = targets, .z_loss_coeff = 1e-2f});
  EXPECT_EQ(full.loss, loss_only.loss);
  EXPECT_EQ(full.z_loss, loss_only.z_loss);
  EXPECT_EQ(full.num_valid, 9);
  EXPECT_EQ(loss_only.num_valid, 9);
}

TEST(CrossEntropy, TokenCountDividesLossAndGradient) {
  const int64_t N = 7, V = 13;
  const Tensor logits = randn({N, V}, 4);
  const Tensor targets = make_targets(N, V, false);
  const Tensor d1 = Tensor::empty({N, V}), d2 = Tensor::empty({N, V});
  const auto r1 = cross_entropy_fused({.logits = logits, .targets = targets, .dlogits = d1});
  const auto r2 = cross_entropy_fused({.logits = logits, .targets = targets, .token_count = 28.0, .dlogits = d2});
  EXPECT_NEAR(r2.loss * 28.0, r1.loss * 7.0, 1e-12 * r1.loss * 7.0);
  const auto v1 = d1.to_vector(), v2 = d2.to_vector();
  for (size_t i = 0; i < v1.size(); ++i) EXPECT_NEAR(v2[i] * 4.f, v1[i], 1e-6f * std::abs(v1[i]) + 1e-9f) << i;
}

TEST(CrossEntropy, IgnoredRowsAndCustomIgnoreIndex) {
  const int64_t N = 4, V = 9;
  const Tensor logits = randn({N, V}, 5);
  Tensor targets = Tensor::from<int32_t>({N}, std::vector<int32_t>{-1, -1, -1, -1});
  Tensor dlogits = Tensor::full({N, V}, 7.f), losses = Tensor::full({N}, 7.f);
  for (double D : {0.0, 10.0}) {
    const CrossEntropyResult r = cross_entropy_fused({.logits = logits, .targets = targets, .ignore_index = -1,
                                                      .z_loss_coeff = 1e-2f, .token_count = D,
                                                      .dlogits = dlogits, .losses = losses});
    EXPECT_EQ(r.num_valid, 0);
    EXPECT_EQ(r.loss, 0.0);
    EXPECT_EQ(r.z_loss, 0.0);
    EXPECT_TRUE(allclose(dlogits, Tensor::zeros({N, V}), 0, 0));
    EXPECT_TRUE(allclose(losses, Tensor::zeros({N}), 0, 0));
  }
  // One valid row: the ignored rows keep zero loss and gradient, and D = 1.
  targets.ptr<int32_t>()[2] = 4;
  const CrossEntropyResult r = cross_entropy_fused({.logits = logits, .targets = targets, .ignore_index = -1,
                                                    .dlogits = dlogits, .losses = losses});
  EXPECT_EQ(r.num_valid, 1);
  EXPECT_NEAR(r.loss, losses.ptr<float>()[2], 1e-6);
  EXPECT_EQ(losses.ptr<float>()[0], 0.f);
  double row_sum = 0;
  for (int64_t v = 0; v < V; ++v) row_sum += dlogits.ptr<float>()[2 * V + v];
  EXPECT_NEAR(row_sum, 0.0, 1e-6);  // softmax - onehot sums to 0
  EXPECT_EQ(dlogits.ptr<float>()[0], 0.f);
}

// A NaN or +inf logit makes its row's loss NaN (so the trainer's non-finite check sees it); other
// rows are unaffected.
TEST(CrossEntropy, NonFiniteLogitsGiveNaNLoss) {
  const int64_t N = 3, V = 5000;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    const Tensor logits = randn({N, V}, 12);
    logits.ptr<float>()[V + 4500] = bad;  // row 1, second chunk
    const Tensor targets = make_targets(N, V, false), losses = Tensor::empty({N});
    const auto r = cross_entropy_fused({.logits = logits, .targets = targets, .losses = losses});
    EXPECT_TRUE(std::isnan(r.loss)) << bad;
    EXPECT_TRUE(std::isnan(losses.ptr<float>()[1])) << bad;
    EXPECT_TRUE(std::isfinite(losses.ptr<float>()[0]) && std::isfinite(losses.ptr<float>()[2])) << bad;
  }
}

// Central finite differences of loss + z_loss (grad_scale 1) against dlogits.
TEST(CrossEntropy, FiniteDifferenceIncludingZLoss) {
  for (auto [N, V, D] : {std::tuple<int64_t, int64_t, double>{3, 7, 0.0}, {4, 13, 5.0}, {2, 4099, 0.0}}) {
    SCOPED_TRACE(::testing::Message() << "N=" << N << " V=" << V << " D=" << D);
    const Tensor logits = randn({N, V}, 21, 2.f);
    const Tensor targets = make_targets(N, V, N > 2);
    const Tensor dlogits = Tensor::empty({N, V});
    const float z = 5e-2f;
    cross_entropy_fused({.logits = logits, .targets = targets, .z_loss_coeff = z, .token_count = D,
                         .dlogits = dlogits});
    const auto loss = [&] {
      const auto r = cross_entropy_fused({.logits = logits, .targets = targets, .z_loss_coeff = z, .token_count = D});
      return r.loss + r.z_loss;
    };
    // Truncation error h^2/6 |f'''| < 1e-5 and f32 rounding of the loss / 2h < 1e-5.
    EXPECT_TRUE(testing::finite_difference_check(loss, logits, dlogits, 1e-2, 1e-3, 1e-4, 64));
  }
}

TEST(CrossEntropy, LossDoesNotDependOnThreadCount) {
  const int64_t N = 37, V = 4099;
  const Tensor logits = randn({N, V}, 8, 3.f);
  const Tensor targets = make_targets(N, V, true);
  const int threads = num_threads();
  set_num_threads(1);
  const auto one = cross_entropy_fused({.logits = logits, .targets = targets, .z_loss_coeff = 1e-3f});
  set_num_threads(2);
  const auto two = cross_entropy_fused({.logits = logits, .targets = targets, .z_loss_coeff = 1e-3f});
  set_num_threads(threads);
  EXPECT_EQ(one.loss, two.loss);
  EXPECT_EQ(one.z_loss, two.z_loss);
}

// Expects `f` to throw foundry::Error whose message contains every string in `parts`.
template <class F>
void expect_error(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const char* p : parts) EXPECT_NE(e.message().find(p), std::string::npos) << e.message();
  }
}

TEST(CrossEntropy, TargetOutOfRangeNamesRowAndValue) {
  const Tensor logits = randn({4, 9}, 6);
  Tensor targets = make_targets(4, 9, false);
  targets.ptr<int32_t>()[2] = 9;
  expect_error([&] { cross_entropy_fused({.logits = logits, .targets = targets}); },
               {"cross_entropy_fused", "target 9", "row 2"});
  targets.ptr<int32_t>()[2] = 0;
  targets.ptr<int32_t>()[3] = -1;  // negative but not ignore_index (-100)
  expect_error([&] { cross_entropy_fused({.logits = logits, .targets = targets}); },
               {"cross_entropy_fused", "target -1", "row 3"});
  EXPECT_NO_THROW(cross_entropy_fused({.logits = logits, .targets = targets, .ignore_index = -1}));
}

TEST(CrossEntropy, BadArgumentsAreErrors) {
  const Tensor logits = randn({4, 9}, 6);
  const Tensor targets = make_targets(4, 9, false);
  const auto run = [](const CrossEntropyArgs& a) { return [a] { cross_entropy_fused(a); }; };
  expect_error(run({.logits = logits, .targets = make_targets(5, 9, false)}), {"cross_entropy_fused", "targets", "(5,)"});
  expect_error(run({.logits = logits.reshape({36}), .targets = targets}), {"cross_entropy_fused", "logits"});
  expect_error(run({.logits = logits.to(DType::bf16), .targets = targets}), {"cross_entropy_fused", "logits", "bf16"});
  expect_error(run({.logits = logits, .targets = targets.to(DType::f32)}), {"cross_entropy_fused", "targets", "f32"});
  expect_error(run({.logits = logits, .targets = targets, .dlogits = Tensor::empty({4, 8})}),
               {"cross_entropy_fused", "dlogits", "(4, 8)"});
  expect_error(run({.logits = logits, .targets = targets, .losses = Tensor::empty({3})}),
               {"cross_entropy_fused", "losses"});
  expect_error(run({.logits = logits, .targets = targets, .token_count = -1.0}),
               {"cross_entropy_fused", "token_count"});
  expect_error(run({.logits = logits, .targets = targets, .z_loss_coeff = -1.f}),
               {"cross_entropy_fused", "z_loss_coeff"});
  // dlogits shifted by one row inside logits' storage: overlapping but not the same tensor.
  const Tensor big = randn({5, 9}, 7);
  expect_error(run({.logits = big.slice(0, 4), .targets = targets, .dlogits = big.slice(1, 5)}),
               {"cross_entropy_fused", "overlaps"});
  TensorView cuda_logits = logits, cuda_targets = targets;
  cuda_logits.device = cuda_targets.device = Device::cuda(0);
  expect_error(run({.logits = cuda_logits, .targets = cuda_targets}), {"cross_entropy_fused", "not supported"});
  expect_error(run({.logits = cuda_logits, .targets = targets}), {"cross_entropy_fused", "devices"});
}

}  // namespace
}  // namespace foundry
