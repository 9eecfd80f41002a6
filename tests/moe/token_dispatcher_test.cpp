#include "foundry/moe/token_dispatcher.h"

#include "testing.h"

namespace foundry {
namespace {

TEST(LocalTokenDispatcher, DispatchIsExpertMajorAndCombineIsItsAdjoint) {
  // T = 4 tokens, E = 3 experts: t0 -> {0, 2}, t1 -> {2}, t2 -> {}, t3 -> {0, 1}.
  const std::vector<uint8_t> map{1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0};
  Tensor routing_map = Tensor::from<uint8_t>({4, 3}, map);
  Tensor probs = Tensor::from({4, 3}, {0.6f, 0, 0.4f, 0, 0, 1, 0, 0, 0, 0.7f, 0.3f, 0});
  Tensor x = testing::randn({4, 5}, 1);
  Context ctx;
  LocalTokenDispatcher d;
  Dispatched out = d.dispatch(ctx, x, routing_map, probs);
  EXPECT_EQ(out.handle.row_token.to_vector(), (std::vector<float>{0, 3, 3, 0, 1}));  // experts 0, 1, 2
  EXPECT_EQ(out.handle.tokens_per_expert.to_vector(), (std::vector<float>{2, 1, 2}));
  EXPECT_EQ(out.probs.to_vector(), (std::vector<float>{0.6f, 0.7f, 0.3f, 0.4f, 1.f}));
  // <combine(r), y> = <r, combine_backward(y)> and <dispatch(x), r> = <x, dispatch_backward(r)>.
  Tensor r = testing::randn({5, 5}, 2), y = testing::randn({4, 5}, 3);
  EXPECT_NEAR(testing::dot(d.combine(ctx, r, out.handle), y), testing::dot(r, d.combine_backward(ctx, y, out.handle)), 1e-5);
  EXPECT_NEAR(testing::dot(out.rows, r), testing::dot(x, d.dispatch_backward(ctx, r, out.handle)), 1e-5);
  // A token with no expert combines to zero.
  const auto c = d.combine(ctx, r, out.handle).to_vector();
  for (int h = 0; h < 5; ++h) EXPECT_EQ(c[2 * 5 + h], 0.f);
}

}  // namespace
}  // namespace foundry
