#include "foundry/core/allocator.h"

#include "testing.h"

namespace foundry {
namespace {

TEST(Allocator, CachesAndCountsLiveAndPeak) {
  Allocator& a = Allocator::get(Device::cpu());
  const int64_t live0 = a.live_bytes();
  a.reset_peak();
  void* p;
  {
    Tensor t = Tensor::empty({1 << 20});  // 4 MiB
    p = t.data();
    EXPECT_EQ(a.live_bytes() - live0, static_cast<int64_t>(Allocator::round_size(4 << 20)));
  }
  EXPECT_EQ(a.live_bytes(), live0);
  EXPECT_GE(a.peak_bytes() - live0, 4 << 20);
  Tensor again = Tensor::empty({1 << 20});
  EXPECT_EQ(again.data(), p);  // the cached block is reused
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.data()) % 64, 0u);
}

}  // namespace
}  // namespace foundry
