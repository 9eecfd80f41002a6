#include "foundry/core/rng.h"

#include <cmath>

#include "foundry/core/threads.h"
#include "testing.h"

namespace foundry {
namespace {

// Known-answer vectors of Philox4x32-10 from Random123's kat_vectors.
TEST(Philox, KnownAnswerVectors) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Philox, StreamDoesNotDependOnThreadCount) {
  const int saved = num_threads();
  Tensor a = Tensor::empty({100003}), b = Tensor::empty({100003});
  set_num_threads(1);
  Philox(42, 7).normal_(a);
  set_num_threads(2);
  Philox(42, 7).normal_(b);
  set_num_threads(saved);
  EXPECT_EQ(a.to_vector(), b.to_vector());
}

TEST(Philox, OffsetsContinueTheStream) {
  // Two fills of 8 values equal one fill of 16: the offset advances by blocks of 4.
  Tensor whole = Tensor::empty({16}), first = Tensor::empty({8}), second = Tensor::empty({8});
  Philox(5).uniform_(whole);
  Philox r(5);
  r.uniform_(first);
  EXPECT_EQ(r.offset(), 2u);
  r.uniform_(second);
  const auto w = whole.to_vector(), f = first.to_vector(), s = second.to_vector();
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(w[i], f[i]);
    EXPECT_EQ(w[8 + i], s[i]);
  }
}

TEST(Philox, MomentsAreRight) {
  Tensor u = Tensor::empty({200000}), n = Tensor::empty({200000});
  Philox(1).uniform_(u, -1.f, 3.f);
  Philox(2).normal_(n, 1.f, 2.f);
  double su = 0, sn = 0, sn2 = 0;
  const auto vu = u.to_vector(), vn = n.to_vector();
  for (float x : vu) {
    ASSERT_GE(x, -1.f);
    ASSERT_LT(x, 3.f);
    su += x;
  }
  for (float x : vn) sn += x, sn2 += static_cast<double>(x) * x;
  const double N = 200000;
  EXPECT_NEAR(su / N, 1.0, 0.01);
  EXPECT_NEAR(sn / N, 1.0, 0.02);
  EXPECT_NEAR(std::sqrt(sn2 / N - (sn / N) * (sn / N)), 2.0, 0.02);
}

}  // namespace
}  // namespace foundry
