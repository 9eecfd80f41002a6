#include "foundry/nn/linear.h"

#include "foundry/backend/cpu/ref/gemm_ref.h"
#include "module_check.h"

namespace foundry {
namespace {

using testing::randn;

struct LinearFixture {
  Linear lin;
  ParamTable table;
  explicit LinearFixture(Linear::Config c) : lin(c) {
    lin.register_params(table, "lin");
    table.allocate(11);
  }
};

TEST(Linear, ForwardMatchesReferenceAndBackwardMatchesFiniteDifferences) {
  LinearFixture f({.in = 13, .out = 7, .init = Init::normal(0.3f)});
  Context ctx;
  Tensor x = randn({5, 13}, 1), w = randn({5, 7}, 2);
  Linear::Saved s;
  Tensor y = f.lin.forward(ctx, x, s);
  Tensor y_ref = Tensor::empty({5, 7});
  ref::gemm({.a = x, .b = f.lin.weight.value, .c = y_ref, .trans_b = true});
  EXPECT_TRUE(testing::allclose(y, y_ref, 1e-5, 1e-6));

  Tensor dx = f.lin.backward(ctx, w, s);
  auto loss = [&] {
    Linear::Saved s2;
    return testing::dot(f.lin.forward(ctx, x, s2), w);
  };
  EXPECT_TRUE(testing::finite_difference_check(loss, x, dx));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.lin.weight.value, f.lin.weight.grad));
}

TEST(Linear, WeightGradientsAccumulate) {
  LinearFixture f({.in = 6, .out = 3});
  Context ctx;
  Tensor x = randn({4, 6}, 3), w = randn({4, 3}, 4);
  Linear::Saved s;
  f.lin.forward(ctx, x, s);
  f.lin.backward(ctx, w, s);
  Tensor once = f.lin.weight.grad.clone();
  f.lin.backward(ctx, w, s);
  Tensor twice = once.clone();
  float* p = twice.ptr<float>();
  for (int64_t i = 0; i < twice.numel(); ++i) p[i] *= 2.f;
  EXPECT_TRUE(testing::allclose(f.lin.weight.grad, twice, 1e-6, 1e-7));
}

TEST(Linear, Bf16ComputeStaysCloseToF32) {
  LinearFixture f32({.in = 64, .out = 37, .init = Init::normal(0.1f)});
  LinearFixture b16({.in = 64, .out = 37, .init = Init::normal(0.1f), .compute = DType::bf16});
  Context ctx;
  Tensor x = randn({29, 64}, 5), w = randn({29, 37}, 6);
  Linear::Saved s1, s2;
  Tensor y1 = f32.lin.forward(ctx, x, s1), y2 = b16.lin.forward(ctx, x, s2);
  // bf16 keeps 8 significant bits: relative error per product ~2^-8, averaged over K = 64 terms.
  EXPECT_TRUE(testing::close_in_norm(y2, y1, 1e-2));
  Tensor dx1 = f32.lin.backward(ctx, w, s1), dx2 = b16.lin.backward(ctx, w, s2);
  EXPECT_TRUE(testing::close_in_norm(dx2, dx1, 1e-2));
  EXPECT_TRUE(testing::close_in_norm(b16.lin.weight.grad, f32.lin.weight.grad, 1e-2));
}

TEST(Linear, RejectsWrongInputWidth) {
  LinearFixture f({.in = 6, .out = 3});
  Context ctx;
  Linear::Saved s;
  EXPECT_THROW(f.lin.forward(ctx, randn({4, 5}, 1), s), Error);
}

}  // namespace
}  // namespace foundry
