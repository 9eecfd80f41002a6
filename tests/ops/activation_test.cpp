// Activations, SwiGLU and softmax: CPU kernels vs the f64 reference on odd/prime shapes,
// central finite differences, written-not-accumulated outputs, aliasing, and bad input.
#include "foundry/ops/activation.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "foundry/backend/cpu/ref/activation_ref.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::nan_filled;

using testing::allclose;
using testing::dot;
using testing::finite_difference_check;
using testing::randn;

const int64_t kRows[] = {1, 3, 37, 127};
const int64_t kWidths[] = {1, 7, 13, 61, 257};
const Activation kKinds[] = {Activation::silu, Activation::gelu_tanh, Activation::gelu_erf, Activation::sigmoid};

// The message of the foundry::Error f throws ("" when it does not throw).


// ---- activation --------------------------------------------------------------------------

TEST(Activation, MatchesReferenceOnOddShapes) {
  for (Activation kind : kKinds)
    for (int64_t n : kRows)
      for (int64_t h : kWidths) {
        SCOPED_TRACE(::testing::Message() << "kind " << int(kind) << " shape " << n << "x" << h);
        const Tensor x = randn({n, h}, 1 + n * h, 3.f), dy = randn({n, h}, 2 + n * h);
        Tensor y = nan_filled({n, h}), y_ref = Tensor::empty({n, h});
        Tensor dx = nan_filled({n, h}), dx_ref = Tensor::empty({n, h});  // written (=)
        activation_forward({.kind = kind, .x = x, .y = y});
        ref::activation_forward({.kind = kind, .x = x, .y = y_ref});
        EXPECT_TRUE(allclose(y, y_ref, 2e-6, 1e-6));
        activation_backward({.kind = kind, .x = x, .dy = dy, .dx = dx});
        ref::activation_backward({.kind = kind, .x = x, .dy = dy, .dx = dx_ref});
        EXPECT_TRUE(allclose(dx, dx_ref, 2e-6, 1e-6));
      }
}

// The tails: large |x| where exp over/underflows, and Inf/NaN inputs.
TEST(Activation, ExtremeInputs) {
  const std::vector<float> v = {-1e30f, -200.f, -90.f, -88.f, -20.f, -9.f, -5.f, -1e-6f, 0.f,
                                1e-6f, 5.f, 9.f, 20.f, 88.f, 90.f, 200.f, 1e30f};
  const Shape s{static_cast<int64_t>(v.size())};
  const Tensor x = Tensor::from<float>(s, v), dy = Tensor::full(s, 1.f);
  for (Activation kind : kKinds) {
    SCOPED_TRACE(int(kind));
    Tensor y = Tensor::empty(s), y_ref = Tensor::empty(s), dx = Tensor::empty(s),
           dx_ref = Tensor::empty(s);
    activation_forward({.kind = kind, .x = x, .y = y});
    ref::activation_forward({.kind = kind, .x = x, .y = y_ref});
    EXPECT_TRUE(allclose(y, y_ref, 2e-6, 1e-30));
    activation_backward({.kind = kind, .x = x, .dy = dy, .dx = dx});
    ref::activation_backward({.kind = kind, .x = x, .dy = dy, .dx = dx_ref});
    EXPECT_TRUE(allclose(dx, dx_ref, 2e-6, 1e-30));
    const Tensor special = Tensor::from({2}, {INFINITY, std::numeric_limits<float>::quiet_NaN()});
    Tensor out = Tensor::empty({2});
    activation_forward({.kind = kind, .x = special, .y = out});
    EXPECT_EQ(out.to_vector()[0], kind == Activation::sigmoid ? 1.f : INFINITY);
    EXPECT_TRUE(std::isnan(out.to_vector()[1]));
  }
}

TEST(Activation, FiniteDifferences) {
  for (Activation kind : kKinds) {
    SCOPED_TRACE(int(kind));
    const Tensor x = randn({3, 7}, 11, 2.f), w = randn({3, 7}, 12);
    Tensor y = Tensor::empty({3, 7}), dx = Tensor::empty({3, 7});
    auto loss = [&] {
      activation_forward({.kind = kind, .x = x, .y = y});
      return dot(y, w);
    };
    activation_backward({.kind = kind, .x = x, .dy = w, .dx = dx});
    EXPECT_TRUE(finite_difference_check(loss, x, dx, 1e-3));
  }
}

TEST(Activation, InPlace) {
  for (Activation kind : kKinds) {
    const Tensor x = randn({37, 61}, 21), dy = randn({37, 61}, 22);
    Tensor y = Tensor::empty({37, 61}), dx = Tensor::empty({37, 61});
    activation_forward({.kind = kind, .x = x, .y = y});
    activation_backward({.kind = kind, .x = x, .dy = dy, .dx = dx});
    Tensor y_in = x.clone(), dx_in = dy.clone();
    activation_backward({.kind = kind, .x = x, .dy = dx_in, .dx = dx_in});
    activation_forward({.kind = kind, .x = y_in, .y = y_in});
    EXPECT_TRUE(allclose(y_in, y, 0, 0));
    EXPECT_TRUE(allclose(dx_in, dx, 0, 0));
  }
}

TEST(Activation, BadInput) {
  const Tensor x = randn({3, 7}, 1), y_bad = Tensor::empty({3, 8});
  const Tensor xi = Tensor::zeros({3, 7}, DType::i32);
  Tensor y = Tensor::empty({3, 7});
  EXPECT_ERROR_MENTIONS(activation_forward({.x = x, .y = y_bad}), "activation_forward", "(3, 8)",
                        "(3, 7)");
  EXPECT_ERROR_MENTIONS(activation_forward({.x = xi, .y = y}), "activation_forward", "i32");
  EXPECT_ERROR_MENTIONS(activation_forward({.x = x}), "activation_forward", "y");
  EXPECT_ERROR_MENTIONS(activation_backward({.x = x, .dy = y_bad, .dx = y}), "activation_backward",
                        "dy", "(3, 8)");
}

// ---- swiglu ------------------------------------------------------------------------------

TEST(Swiglu, MatchesReferenceOnOddShapes) {
  for (int64_t n : kRows)
    for (int64_t f : kWidths) {
      SCOPED_TRACE(::testing::Message() << "N " << n << " F " << f);
      const Tensor x = randn({n, 2 * f}, 3 + n * f, 2.f), dy = randn({n, f}, 4 + n * f);
      Tensor y = nan_filled({n, f}), y_ref = Tensor::empty({n, f});
      Tensor dx = nan_filled({n, 2 * f}), dx_ref = Tensor::empty({n, 2 * f});
      swiglu_forward({.x = x, .y = y});
      ref::swiglu_forward({.x = x, .y = y_ref});
      EXPECT_TRUE(allclose(y, y_ref, 2e-6, 1e-6));
      swiglu_backward({.x = x, .dy = dy, .dx = dx});
      ref::swiglu_backward({.x = x, .dy = dy, .dx = dx_ref});
      EXPECT_TRUE(allclose(dx, dx_ref, 2e-6, 1e-6));
    }
}

TEST(Swiglu, GateFirstThenUp) {
  const Tensor x = Tensor::from({1, 4}, {1.f, 2.f, 3.f, 4.f});  // gate (1, 2), up (3, 4)
  Tensor y = Tensor::empty({1, 2});
  swiglu_forward({.x = x, .y = y});
  const auto v = y.to_vector();
  EXPECT_NEAR(v[0], 1.0 / (1.0 + std::exp(-1.0)) * 3.0, 1e-6);
  EXPECT_NEAR(v[1], 2.0 / (1.0 + std::exp(-2.0)) * 4.0, 1e-6);
}

TEST(Swiglu, FiniteDifferences) {
  const Tensor x = randn({3, 14}, 31, 2.f), w = randn({3, 7}, 32);
  Tensor y = Tensor::empty({3, 7}), dx = Tensor::empty({3, 14});
  auto loss = [&] {
    swiglu_forward({.x = x, .y = y});
    return dot(y, w);
  };
  swiglu_backward({.x = x, .dy = w, .dx = dx});
  EXPECT_TRUE(finite_difference_check(loss, x, dx, 1e-3));
}

TEST(Swiglu, BadInput) {
  const Tensor x = randn({3, 7}, 1), x2 = randn({3, 8}, 1), x1 = randn({24}, 1);
  Tensor y = Tensor::empty({3, 4}), y_bad = Tensor::empty({3, 3});
  EXPECT_ERROR_MENTIONS(swiglu_forward({.x = x, .y = y}), "swiglu_forward", "(3, 7)", "2F");
  EXPECT_ERROR_MENTIONS(swiglu_forward({.x = x2, .y = y_bad}), "swiglu_forward", "(3, 3)", "(3, 4)");
  EXPECT_ERROR_MENTIONS(swiglu_forward({.x = x1, .y = y}), "swiglu_forward", "(24,)");
  EXPECT_ERROR_MENTIONS(swiglu_backward({.x = x2, .dy = y, .dx = y}), "swiglu_backward", "dx",
                        "(3, 4)", "(3, 8)");
}

// ---- softmax -----------------------------------------------------------------------------

TEST(Softmax, MatchesReferenceOnOddShapes) {
  for (int64_t n : kRows)
    for (int64_t c : kWidths) {
      SCOPED_TRACE(::testing::Message() << "N " << n << " C " << c);
      Tensor x = randn({n, c}, 5 + n * c, 4.f);
      float* p = x.ptr<float>();
      for (int64_t i = 0; i < n; ++i) p[i * c] += 1000.f * static_cast<float>(i % 3);  // needs max-subtraction
      const Tensor dy = randn({n, c}, 6 + n * c);
      Tensor y = nan_filled({n, c}), y_ref = Tensor::empty({n, c});
      Tensor dx = nan_filled({n, c}), dx_ref = Tensor::empty({n, c});
      softmax_forward({.x = x, .y = y});
      ref::softmax_forward({.x = x, .y = y_ref});
      EXPECT_TRUE(allclose(y, y_ref, 1e-5, 1e-7));
      softmax_backward({.y = y_ref, .dy = dy, .dx = dx});
      ref::softmax_backward({.y = y_ref, .dy = dy, .dx = dx_ref});
      EXPECT_TRUE(allclose(dx, dx_ref, 1e-5, 1e-6));
    }
}

TEST(Softmax, FiniteDifferences) {
  const Tensor x = randn({3, 7}, 41, 2.f), w = randn({3, 7}, 42);
  Tensor y = Tensor::empty({3, 7}), dx = Tensor::empty({3, 7});
  auto loss = [&] {
    softmax_forward({.x = x, .y = y});
    return dot(y, w);
  };
  loss();
  softmax_backward({.y = y, .dy = w, .dx = dx});
  EXPECT_TRUE(finite_difference_check(loss, x, dx, 1e-3));
}

TEST(Softmax, BackwardInPlace) {
  const Tensor x = randn({37, 61}, 51), dy = randn({37, 61}, 52);
  Tensor y = Tensor::empty({37, 61}), dx = Tensor::empty({37, 61});
  softmax_forward({.x = x, .y = y});
  softmax_backward({.y = y, .dy = dy, .dx = dx});
  Tensor d = dy.clone();
  softmax_backward({.y = y, .dy = d, .dx = d});
  EXPECT_TRUE(allclose(d, dx, 0, 0));
}

TEST(Softmax, BadInput) {
  const Tensor x = randn({3, 7}, 1), x1 = randn({7}, 1);
  Tensor y = Tensor::empty({3, 7}), y_bad = Tensor::empty({7, 3});
  EXPECT_ERROR_MENTIONS(softmax_forward({.x = x1, .y = y}), "softmax_forward", "(7,)");
  EXPECT_ERROR_MENTIONS(softmax_forward({.x = x, .y = y_bad}), "softmax_forward", "(7, 3)", "(3, 7)");
  EXPECT_ERROR_MENTIONS(softmax_backward({.y = y, .dy = y_bad, .dx = y}), "softmax_backward", "dy");
}

}  // namespace
}  // namespace foundry
