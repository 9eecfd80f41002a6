// Residual add: vs the reference, finite differences, += accumulation into da/db (each may
// be empty, or both the same tensor), aliasing out with a or b, and bad input.
// Bias add: vs the reference on odd shapes (serial and parallel paths), finite differences of the
// bias, += accumulation of dbias, out aliasing x, bad input.
#include "foundry/ops/elementwise.h"

#include <string>

#include "foundry/backend/cpu/ref/elementwise_ref.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::allclose;
using testing::dot;
using testing::finite_difference_check;
using testing::randn;


TEST(Add, MatchesReferenceOnOddShapes) {
  for (int64_t n : {1, 3, 37, 127})
    for (int64_t h : {1, 7, 13, 61, 257}) {
      SCOPED_TRACE(::testing::Message() << n << "x" << h);
      const Tensor a = randn({n, h}, 1 + n * h), b = randn({n, h}, 2 + n * h);
      const Tensor dout = randn({n, h}, 3 + n * h);
      Tensor out = Tensor::empty({n, h}), out_ref = Tensor::empty({n, h});
      add_forward({.a = a, .b = b, .out = out});
      ref::add_forward({.a = a, .b = b, .out = out_ref});
      EXPECT_TRUE(allclose(out, out_ref, 0, 0));
      const Tensor da0 = randn({n, h}, 4), db0 = randn({n, h}, 5);
      Tensor da = da0.clone(), db = db0.clone(), da_ref = da0.clone(), db_ref = db0.clone();
      add_backward({.dout = dout, .da = da, .db = db});
      ref::add_backward({.dout = dout, .da = da_ref, .db = db_ref});
      EXPECT_TRUE(allclose(da, da_ref, 0, 0));
      EXPECT_TRUE(allclose(db, db_ref, 0, 0));
    }
}

TEST(Add, ThreeDimensionalShapes) {
  const Tensor a = randn({3, 5, 7}, 1), b = randn({3, 5, 7}, 2);
  Tensor out = Tensor::empty({3, 5, 7}), out_ref = Tensor::empty({3, 5, 7});
  add_forward({.a = a, .b = b, .out = out});
  ref::add_forward({.a = a, .b = b, .out = out_ref});
  EXPECT_TRUE(allclose(out, out_ref, 0, 0));
}

TEST(Add, FiniteDifferences) {
  const Tensor a = randn({3, 7}, 1), b = randn({3, 7}, 2), w = randn({3, 7}, 3);
  Tensor out = Tensor::empty({3, 7}), da = Tensor::zeros({3, 7}), db = Tensor::zeros({3, 7});
  auto loss = [&] {
    add_forward({.a = a, .b = b, .out = out});
    return dot(out, w);
  };
  add_backward({.dout = w, .da = da, .db = db});
  EXPECT_TRUE(finite_difference_check(loss, a, da));
  EXPECT_TRUE(finite_difference_check(loss, b, db));
}

TEST(Add, BackwardAccumulates) {
  const Tensor dout = randn({37, 61}, 1);
  Tensor da = Tensor::zeros({37, 61}), db = Tensor::zeros({37, 61});
  Tensor twice = Tensor::empty({37, 61});
  add_forward({.a = dout, .b = dout, .out = twice});
  add_backward({.dout = dout, .da = da, .db = db});
  add_backward({.dout = dout, .da = da, .db = db});
  EXPECT_TRUE(allclose(da, twice, 0, 0));
  EXPECT_TRUE(allclose(db, twice, 0, 0));
  // Either gradient may be empty.
  Tensor only = Tensor::zeros({37, 61});
  add_backward({.dout = dout, .da = only});
  add_backward({.dout = dout, .db = only});
  EXPECT_TRUE(allclose(only, twice, 0, 0));
  add_backward({.dout = dout});  // nothing to do
  // out = x + x: the same tensor receives both contributions.
  Tensor dx = Tensor::zeros({37, 61});
  add_backward({.dout = dout, .da = dx, .db = dx});
  EXPECT_TRUE(allclose(dx, twice, 0, 0));
}

TEST(Add, OutMayAliasInputs) {
  const Tensor a = randn({127, 257}, 1), b = randn({127, 257}, 2);  // large: parallel path
  Tensor out = Tensor::empty({127, 257});
  add_forward({.a = a, .b = b, .out = out});
  Tensor a2 = a.clone(), b2 = b.clone();
  add_forward({.a = a2, .b = b, .out = a2});
  add_forward({.a = a, .b = b2, .out = b2});
  EXPECT_TRUE(allclose(a2, out, 0, 0));
  EXPECT_TRUE(allclose(b2, out, 0, 0));
}

TEST(Add, BadInput) {
  const Tensor a = randn({3, 7}, 1), b = randn({3, 8}, 2), ai = Tensor::zeros({3, 7}, DType::i32);
  Tensor out = Tensor::empty({3, 7});
  EXPECT_ERROR_MENTIONS(add_forward({.a = a, .b = b, .out = out}), "add_forward", "b", "(3, 8)",
                        "(3, 7)");
  EXPECT_ERROR_MENTIONS(add_forward({.a = ai, .b = a, .out = out}), "add_forward", "i32");
  EXPECT_ERROR_MENTIONS(add_forward({.a = a, .b = a}), "add_forward", "out");
  EXPECT_ERROR_MENTIONS(add_backward({.dout = a, .db = b}), "add_backward", "db", "(3, 8)");
}

// Views claiming to live on a GPU this machine does not have: the op names itself and the
// device and refuses (a build without CUDA says so; a CUDA build finds no such device).
TEST(Add, AbsentCudaDevicesAreRefusedClearly) {
  Tensor a = randn({3, 7}, 1), out = Tensor::empty({3, 7});
  TensorView a_gpu = a.view(), out_gpu = out.view();
  a_gpu.device = out_gpu.device = Device::cuda(cuda_device_count());  // one past the last GPU
  const std::string device = a_gpu.device.str();
  EXPECT_ERROR_MENTIONS(add_forward({.a = a_gpu, .b = a_gpu, .out = out_gpu}), "add_forward",
                        device.c_str());
  EXPECT_ERROR_MENTIONS(add_forward({.a = a, .b = a_gpu, .out = out}), "add_forward", "cpu", "cuda");
}

TEST(BiasAdd, MatchesReferenceOnOddShapes) {
  for (int64_t n : {1, 3, 37, 257})
    for (int64_t c : {1, 7, 13, 61, 257}) {
      SCOPED_TRACE(::testing::Message() << n << "x" << c);
      const Tensor x = randn({n, c}, 1 + n * c), b = randn({c}, 2 + n * c), dout = randn({n, c}, 3 + n * c);
      Tensor out = testing::nan_filled({n, c}), out_ref = Tensor::empty({n, c});
      bias_add_forward({.x = x, .bias = b, .out = out});
      ref::bias_add_forward({.x = x, .bias = b, .out = out_ref});
      EXPECT_TRUE(allclose(out, out_ref, 0, 0));
      const Tensor db0 = randn({c}, 4);
      Tensor db = db0.clone(), db_ref = db0.clone();
      bias_add_backward({.dout = dout, .dbias = db});
      ref::bias_add_backward({.dout = dout, .dbias = db_ref});
      EXPECT_TRUE(allclose(db, db_ref, 1e-6, 1e-6));
    }
}

TEST(BiasAdd, HandComputedAndAccumulates) {
  const Tensor x = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}), b = Tensor::from({3}, {10, 20, 30});
  Tensor out = x.clone();
  bias_add_forward({.x = out, .bias = b, .out = out});  // in place
  EXPECT_TRUE(allclose(out, Tensor::from({2, 3}, {11, 22, 33, 14, 25, 36}), 0, 0));
  Tensor db = Tensor::from({3}, {1, 1, 1});
  bias_add_backward({.dout = x, .dbias = db});
  bias_add_backward({.dout = x, .dbias = db});
  EXPECT_TRUE(allclose(db, Tensor::from({3}, {11, 15, 19}), 0, 0));  // 1 + 2 (1 + 4), ...
}

TEST(BiasAdd, FiniteDifferences) {
  const Tensor x = randn({5, 7}, 1), b = randn({7}, 2), w = randn({5, 7}, 3);
  Tensor out = Tensor::empty({5, 7}), db = Tensor::zeros({7});
  auto loss = [&] {
    bias_add_forward({.x = x, .bias = b, .out = out});
    return dot(out, w);
  };
  bias_add_backward({.dout = w, .dbias = db});
  EXPECT_TRUE(finite_difference_check(loss, b, db));
}

TEST(BiasAdd, BadInput) {
  const Tensor x = randn({3, 7}, 1), b = randn({6}, 2);
  Tensor out = Tensor::empty({3, 7}), db = Tensor::zeros({6});
  EXPECT_ERROR_MENTIONS(bias_add_forward({.x = x, .bias = b, .out = out}), "bias_add_forward", "bias", "(6,)", "(7,)");
  EXPECT_ERROR_MENTIONS(bias_add_forward({.x = randn({3, 7, 2}, 3), .bias = b, .out = out}), "bias_add_forward",
                        "2-D");
  EXPECT_ERROR_MENTIONS(bias_add_backward({.dout = x, .dbias = db}), "bias_add_backward", "dbias", "(6,)");
}

}  // namespace
}  // namespace foundry
