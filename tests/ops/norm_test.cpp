// RMSNorm and LayerNorm: vs the f64 reference on odd/prime shapes (forward y and stats,
// backward dx / dweight / dbias), central finite differences for x, weight and bias, the
// =/+= semantics of every gradient, determinism of the parallel reduction, and bad input.
#include "foundry/ops/norm.h"

#include <cstring>
#include <limits>
#include <string>

#include "foundry/backend/cpu/ref/norm_ref.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::nan_filled;

using testing::allclose;
using testing::dot;
using testing::finite_difference_check;
using testing::randn;



// Every tensor of one norm call, sized for (N, H).
struct Norm {
  bool layer;
  int64_t N, H;
  Tensor x, weight, bias, y, mean, rstd, dy, dx, dweight, dbias;

  Norm(bool layer_, int64_t n, int64_t h, uint64_t seed, bool with_bias = true)
      : layer(layer_), N(n), H(h) {
    x = randn({N, H}, seed, 2.f);
    float* p = x.ptr<float>();
    for (int64_t i = 0; i < N * H; ++i) p[i] += 0.5f;  // a nonzero mean
    weight = randn({H}, seed + 1, 0.5f);
    if (layer && with_bias) bias = randn({H}, seed + 2);
    y = Tensor::empty({N, H});
    if (layer) mean = Tensor::empty({N});
    rstd = Tensor::empty({N});
    dy = randn({N, H}, seed + 3);
    dx = Tensor::empty({N, H});
    dweight = Tensor::zeros({H});
    if (layer && with_bias) dbias = Tensor::zeros({H});
  }
  NormArgs args(bool accumulate_dx = false) const {
    return {.x = x, .weight = weight, .bias = bias, .eps = 1e-5f, .y = y, .mean = mean,
            .rstd = rstd, .dy = dy, .dx = dx, .dweight = dweight, .dbias = dbias,
            .accumulate_dx = accumulate_dx};
  }
  void forward() const { layer ? layernorm_forward(args()) : rmsnorm_forward(args()); }
  void backward(bool acc = false) const {
    layer ? layernorm_backward(args(acc)) : rmsnorm_backward(args(acc));
  }
  void ref_forward() const { layer ? ref::layernorm_forward(args()) : ref::rmsnorm_forward(args()); }
  void ref_backward(bool acc = false) const {
    layer ? ref::layernorm_backward(args(acc)) : ref::rmsnorm_backward(args(acc));
  }
};

class NormTest : public ::testing::TestWithParam<bool> {};  // true: LayerNorm

TEST_P(NormTest, MatchesReferenceOnOddShapes) {
  const bool layer = GetParam();
  for (int64_t n : {1, 3, 37, 127})
    for (int64_t h : {1, 7, 13, 61, 257}) {
      SCOPED_TRACE(::testing::Message() << "N " << n << " H " << h);
      Norm a(layer, n, h, 100 + n * h), r(layer, n, h, 100 + n * h);
      a.y.copy_from(nan_filled({n, h}));
      a.forward();
      r.ref_forward();
      EXPECT_TRUE(allclose(a.y, r.y, 1e-5, 1e-5));
      EXPECT_TRUE(allclose(a.rstd, r.rstd, 1e-5, 0));
      if (layer) {
        EXPECT_TRUE(allclose(a.mean, r.mean, 1e-5, 1e-6));
      }
      // Backward from the same saved statistics; dx written (=) over garbage.
      r.rstd.copy_from(a.rstd);
      if (layer) r.mean.copy_from(a.mean);
      a.dx.copy_from(nan_filled({n, h}));
      a.backward();
      r.ref_backward();
      EXPECT_TRUE(allclose(a.dx, r.dx, 1e-4, 1e-5));
      EXPECT_TRUE(allclose(a.dweight, r.dweight, 1e-4, 1e-4));
      if (layer) {
        EXPECT_TRUE(allclose(a.dbias, r.dbias, 1e-4, 1e-4));
      }
      // accumulate_dx adds into what is there.
      a.backward(true);
      r.ref_backward(true);
      EXPECT_TRUE(allclose(a.dx, r.dx, 1e-4, 1e-5));
    }
}

TEST_P(NormTest, FiniteDifferences) {
  const bool layer = GetParam();
  Norm a(layer, 3, 7, 7);
  const Tensor w = randn({3, 7}, 8);
  a.dy.copy_from(w);
  auto loss = [&] {
    a.forward();
    return dot(a.y, w);
  };
  loss();
  a.backward();
  EXPECT_TRUE(finite_difference_check(loss, a.x, a.dx, 1e-3));
  EXPECT_TRUE(finite_difference_check(loss, a.weight, a.dweight, 1e-3));
  if (layer) {
    EXPECT_TRUE(finite_difference_check(loss, a.bias, a.dbias, 1e-3));
  }
}

TEST_P(NormTest, GradientsAccumulate) {
  const bool layer = GetParam();
  Norm a(layer, 127, 257, 9);  // large enough for the parallel path
  a.forward();
  a.backward();
  const Tensor dx1 = a.dx.clone(), dw1 = a.dweight.clone();
  const Tensor db1 = layer ? a.dbias.clone() : Tensor();
  a.backward();  // dx written again (=): unchanged; dweight/dbias now doubled
  EXPECT_TRUE(allclose(a.dx, dx1, 0, 0));
  Tensor two = Tensor::empty({a.H});
  const auto twice = [&](const Tensor& t) {
    for (int64_t j = 0; j < a.H; ++j) two.ptr<float>()[j] = 2.f * t.ptr<float>()[j];
    return two;
  };
  EXPECT_TRUE(allclose(a.dweight, twice(dw1), 1e-6, 1e-6));
  if (layer) {
    EXPECT_TRUE(allclose(a.dbias, twice(db1), 1e-6, 1e-6));
  }
  a.dx.zero_();
  a.backward(true);
  a.backward(true);
  Tensor dx2 = Tensor::empty({a.N, a.H});
  for (int64_t i = 0; i < a.N * a.H; ++i) dx2.ptr<float>()[i] = 2.f * dx1.ptr<float>()[i];
  EXPECT_TRUE(allclose(a.dx, dx2, 1e-6, 1e-6));
}

TEST_P(NormTest, BackwardIsDeterministic) {
  const bool layer = GetParam();
  Norm a(layer, 127, 257, 10), b(layer, 127, 257, 10);
  a.forward();
  b.forward();
  a.backward();
  b.backward();
  EXPECT_EQ(std::memcmp(a.dweight.data(), b.dweight.data(), a.dweight.nbytes()), 0);
  EXPECT_EQ(std::memcmp(a.dx.data(), b.dx.data(), a.dx.nbytes()), 0);
  if (layer) {
    EXPECT_EQ(std::memcmp(a.dbias.data(), b.dbias.data(), a.dbias.nbytes()), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Norm, NormTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "LayerNorm" : "RMSNorm"; });

TEST(Norm, LayerNormWithoutBias) {
  Norm a(true, 37, 61, 11, /*with_bias=*/false), r(true, 37, 61, 11, false);
  a.forward();
  r.ref_forward();
  EXPECT_TRUE(allclose(a.y, r.y, 1e-5, 1e-5));
  r.rstd.copy_from(a.rstd);
  r.mean.copy_from(a.mean);
  a.backward();
  r.ref_backward();
  EXPECT_TRUE(allclose(a.dx, r.dx, 1e-4, 1e-5));
  EXPECT_TRUE(allclose(a.dweight, r.dweight, 1e-4, 1e-4));
}

TEST(Norm, KnownValues) {
  // RMSNorm of (3, 4): mean square 12.5, y = x / sqrt(12.5 + eps) * w.
  const Tensor x = Tensor::from({1, 2}, {3.f, 4.f}), w = Tensor::from({2}, {1.f, 2.f});
  Tensor y = Tensor::empty({1, 2}), rstd = Tensor::empty({1});
  rmsnorm_forward({.x = x, .weight = w, .eps = 0.f, .y = y, .rstd = rstd});
  EXPECT_NEAR(y.to_vector()[0], 3.0 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(y.to_vector()[1], 8.0 / std::sqrt(12.5), 1e-6);
  // LayerNorm of (3, 4): mean 3.5, biased variance 0.25, y = (-1, 1) * w + b.
  Tensor mean = Tensor::empty({1});
  const Tensor b = Tensor::from({2}, {10.f, 20.f});
  layernorm_forward({.x = x, .weight = w, .bias = b, .eps = 0.f, .y = y, .mean = mean, .rstd = rstd});
  EXPECT_FLOAT_EQ(mean.to_vector()[0], 3.5f);
  EXPECT_FLOAT_EQ(rstd.to_vector()[0], 2.f);
  EXPECT_FLOAT_EQ(y.to_vector()[0], 9.f);
  EXPECT_FLOAT_EQ(y.to_vector()[1], 22.f);
}

TEST(Norm, BadInput) {
  Norm r(false, 3, 7, 1), l(true, 3, 7, 1);
  const Tensor w8 = Tensor::empty({8}), x3 = Tensor::empty({3, 7, 1}), xi = Tensor::zeros({3, 7}, DType::i32);
  NormArgs a = r.args();
  a.weight = w8;
  EXPECT_ERROR_MENTIONS(rmsnorm_forward(a), "rmsnorm_forward", "weight", "(8,)", "(7,)");
  a = r.args();
  a.x = x3;
  EXPECT_ERROR_MENTIONS(rmsnorm_forward(a), "rmsnorm_forward", "(3, 7, 1)");
  a = r.args();
  a.x = xi;
  EXPECT_ERROR_MENTIONS(rmsnorm_backward(a), "rmsnorm_backward", "x", "i32");
  a = r.args();
  a.bias = l.bias;
  EXPECT_ERROR_MENTIONS(rmsnorm_forward(a), "rmsnorm_forward", "bias");
  a = r.args();
  a.rstd = {};
  EXPECT_ERROR_MENTIONS(rmsnorm_backward(a), "rmsnorm_backward", "rstd");
  a = l.args();
  a.mean = {};
  EXPECT_ERROR_MENTIONS(layernorm_forward(a), "layernorm_forward", "mean");
  a = l.args();
  a.dbias = {};
  EXPECT_ERROR_MENTIONS(layernorm_backward(a), "layernorm_backward", "dbias");
  a = l.args();
  a.dy = w8;
  EXPECT_ERROR_MENTIONS(layernorm_backward(a), "layernorm_backward", "dy", "(8,)", "(3, 7)");
  a = l.args();
  a.eps = -1.f;
  EXPECT_ERROR_MENTIONS(layernorm_forward(a), "layernorm_forward", "eps");
}

}  // namespace
}  // namespace foundry
