#include "foundry/nn/mlp.h"

#include "module_check.h"

namespace foundry {
namespace {

using testing::randn;

TEST(MLPModule, GradientsMatchFiniteDifferences) {
  MLP mlp({.hidden = 8, .ffn = 13, .init_std = 0.3f, .output_init_std = 0.3f});
  ParamTable table;
  mlp.register_params(table, "mlp");
  table.allocate(5);
  Context ctx;
  Tensor x = randn({7, 8}, 1), w = randn({7, 8}, 2);
  MLP::Saved s;
  mlp.forward(ctx, x, s);
  Tensor dx = mlp.backward(ctx, w, s);
  auto loss = [&] {
    MLP::Saved s2;
    return testing::dot(mlp.forward(ctx, x, s2), w);
  };
  EXPECT_TRUE(testing::finite_difference_check(loss, x, dx));
  EXPECT_TRUE(testing::finite_difference_check(loss, mlp.linear_fc1.weight.value, mlp.linear_fc1.weight.grad));
  EXPECT_TRUE(testing::finite_difference_check(loss, mlp.linear_fc2.weight.value, mlp.linear_fc2.weight.grad));
}

}  // namespace
}  // namespace foundry
