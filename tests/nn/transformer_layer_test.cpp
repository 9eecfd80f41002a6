#include "foundry/nn/transformer_layer.h"

#include "module_check.h"

namespace foundry {
namespace {

using testing::randn;

TEST(TransformerLayerModule, GradientsMatchFiniteDifferences) {
  TransformerLayer layer({.attention = {.hidden = 16, .num_heads = 4, .num_kv_heads = 2,
                                        .init_std = 0.2f, .output_init_std = 0.2f},
                          .mlp = {.hidden = 16, .ffn = 24, .init_std = 0.2f, .output_init_std = 0.2f}});
  ParamTable table;
  layer.register_params(table, "decoder.layers.0");
  table.allocate(8);
  // Non-trivial norm weights so their gradients are exercised.
  Philox(7).uniform_(layer.input_layernorm.weight.value, 0.5f, 1.5f);
  Philox(8).uniform_(layer.pre_mlp_layernorm.weight.value, 0.5f, 1.5f);
  Context ctx;
  const SequenceLayout seq = SequenceLayout::packed({0, 3, 8});
  Tensor x = randn({8, 16}, 1), w = randn({8, 16}, 2);
  TransformerLayer::Saved s;
  layer.forward(ctx, x, seq, s);
  Tensor dx = layer.backward(ctx, w, seq, s);
  auto loss = [&] {
    TransformerLayer::Saved s2;
    return testing::dot(layer.forward(ctx, x, seq, s2), w);
  };
  EXPECT_TRUE(testing::finite_difference_check(loss, x, dx));
  for (int i = 0; i < table.size(); ++i)
    EXPECT_TRUE(testing::finite_difference_check(loss, table.param(i).value, table.param(i).grad))
        << table.spec(i).name;
}

}  // namespace
}  // namespace foundry
