#include "foundry/nn/attention.h"

#include "module_check.h"

namespace foundry {
namespace {

using testing::randn;

struct AttentionFixture {
  Attention attn;
  ParamTable table;
  explicit AttentionFixture(Attention::Config c) : attn(c) {
    attn.register_params(table, "self_attention");
    table.allocate(21);
  }
};

TEST(AttentionModule, GradientsMatchFiniteDifferencesWithGqa) {
  AttentionFixture f({.hidden = 16, .num_heads = 4, .num_kv_heads = 2, .init_std = 0.3f,
                      .output_init_std = 0.3f});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(2, 5);
  Tensor x = randn({10, 16}, 1), w = randn({10, 16}, 2);
  Attention::Saved s;
  f.attn.forward(ctx, x, seq, s);
  Tensor dx = f.attn.backward(ctx, w, seq, s);
  auto loss = [&] {
    Attention::Saved s2;
    return testing::dot(f.attn.forward(ctx, x, seq, s2), w);
  };
  EXPECT_TRUE(testing::finite_difference_check(loss, x, dx));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_qkv.weight.value,
                                               f.attn.linear_qkv.weight.grad));
  EXPECT_TRUE(testing::finite_difference_check(loss, f.attn.linear_proj.weight.value,
                                               f.attn.linear_proj.weight.grad));
}

TEST(AttentionModule, CausalOutputIgnoresFutureTokens) {
  AttentionFixture f({.hidden = 16, .num_heads = 2, .num_kv_heads = 1});
  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(1, 7);
  Tensor x = randn({7, 16}, 3);
  Attention::Saved s1, s2;
  Tensor y1 = f.attn.forward(ctx, x, seq, s1);
  Tensor x2 = x.clone();
  x2.ptr<float>()[6 * 16 + 3] += 1.f;  // change the last token only
  Tensor y2 = f.attn.forward(ctx, x2, seq, s2);
  EXPECT_TRUE(testing::allclose(y1.slice(0, 6), y2.slice(0, 6), 0, 0));
}

TEST(AttentionModule, PackedDocumentsEqualSeparateRuns) {
  AttentionFixture f({.hidden = 16, .num_heads = 4, .num_kv_heads = 4});
  Context ctx;
  Tensor x = randn({9, 16}, 4);
  Attention::Saved s, s_a, s_b;
  Tensor packed = f.attn.forward(ctx, x, SequenceLayout::packed({0, 4, 9}), s);
  Tensor a = f.attn.forward(ctx, x.slice(0, 4).clone(), SequenceLayout::uniform(1, 4), s_a);
  Tensor b = f.attn.forward(ctx, x.slice(4, 9).clone(), SequenceLayout::uniform(1, 5), s_b);
  EXPECT_TRUE(testing::allclose(packed.slice(0, 4), a, 1e-5, 1e-6));
  EXPECT_TRUE(testing::allclose(packed.slice(4, 9), b, 1e-5, 1e-6));
}

TEST(AttentionModule, RejectsIndivisibleHeads) {
  EXPECT_THROW(Attention({.hidden = 16, .num_heads = 4, .num_kv_heads = 3}), Error);
  EXPECT_THROW(Attention({.hidden = 18, .num_heads = 4}), Error);
}

}  // namespace
}  // namespace foundry
