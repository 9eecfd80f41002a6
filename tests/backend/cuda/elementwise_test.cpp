// CUDA backend vs the CPU backend (ARCHITECTURE §3): runs where a GPU is present.
#include "foundry/ops/elementwise.h"

#include "testing.h"

namespace foundry {
namespace {

TEST(CudaAdd, MatchesCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const Device gpu = Device::cuda(0);
  for (int64_t n : {1, 7, 1000, 100003}) {
    Tensor a = testing::randn({n}, 1), b = testing::randn({n}, 2);
    Tensor out = Tensor::empty({n});
    add_forward({.a = a, .b = b, .out = out});
    Tensor a_d = a.to_device(gpu), b_d = b.to_device(gpu), out_d = Tensor::empty({n}, DType::f32, gpu);
    add_forward({.a = a_d, .b = b_d, .out = out_d});
    EXPECT_TRUE(testing::allclose(out_d.to_device(Device::cpu()), out, 0, 0)) << n;
    // backward accumulates into both inputs' gradients
    Tensor da = Tensor::zeros({n}, DType::f32, gpu), db = Tensor::zeros({n}, DType::f32, gpu);
    add_backward({.dout = out_d, .da = da, .db = db});
    add_backward({.dout = out_d, .da = da});
    Tensor twice = Tensor::empty({n});
    add_forward({.a = out, .b = out, .out = twice});
    EXPECT_TRUE(testing::allclose(da.to_device(Device::cpu()), twice, 0, 0));
    EXPECT_TRUE(testing::allclose(db.to_device(Device::cpu()), out, 0, 0));
  }
}

}  // namespace
}  // namespace foundry
