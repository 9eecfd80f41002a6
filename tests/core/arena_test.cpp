#include "foundry/core/arena.h"

#include "testing.h"

namespace foundry {
namespace {

TEST(Arena, CarvesAlignedTensors) {
  Arena arena(1024);
  Tensor a = arena.take({3}, DType::f32);
  Tensor b = arena.take({5}, DType::i32);
  EXPECT_EQ(static_cast<char*>(b.data()) - static_cast<char*>(a.data()), 64);
  EXPECT_EQ(arena.used(), 128);
  a.ptr<float>()[0] = 2.f;
  arena.zero_();
  EXPECT_EQ(a.to_vector()[0], 0.f);
  EXPECT_THROW(arena.take({1000}, DType::f32), Error);
}

}  // namespace
}  // namespace foundry
