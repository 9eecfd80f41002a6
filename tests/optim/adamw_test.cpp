#include "foundry/optim/adamw.h"

#include <cmath>

#include "testing.h"

namespace foundry {
namespace {

TEST(AdamW, StepsEveryParameterWithItsDecayFlag) {
  Param w, norm;
  ParamTable t;
  t.add(w, {.name = "w", .shape = {3}, .init = Init::normal(1.f)});
  t.add(norm, {.name = "norm", .shape = {2}, .init = Init::ones(), .weight_decay = false});
  t.allocate(2);
  const auto w0 = w.value.to_vector();
  const float g[3] = {0.5f, -1.f, 2.f};
  std::copy(g, g + 3, w.grad.ptr<float>());
  norm.grad.ptr<float>()[0] = 1.f;
  norm.grad.ptr<float>()[1] = -3.f;
  AdamW opt(t, {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.5f});
  opt.step(0.1f, 0.5f);
  // Step 1 with bias correction: m_hat = g', v_hat = g'^2, so the update is lr * sign(g')
  // (up to eps), after decoupled decay p *= (1 - lr wd) (only where decay applies).
  const auto w1 = w.value.to_vector(), n1 = norm.value.to_vector();
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(w1[i], w0[i] * (1 - 0.1f * 0.5f) - 0.1f * (g[i] > 0 ? 1 : -1), 1e-6);
  EXPECT_NEAR(n1[0], 1.f - 0.1f, 1e-6);
  EXPECT_NEAR(n1[1], 1.f + 0.1f, 1e-6);
  EXPECT_EQ(opt.steps(), 1);
  EXPECT_NEAR(opt.exp_avg(0).to_vector()[2], 0.1f * 2.f * 0.5f, 1e-7);
}

TEST(AdamW, ClipGradNormUsesTheGlobalNorm) {
  Param a, b;
  ParamTable t;
  t.add(a, {.name = "a", .shape = {2}});
  t.add(b, {.name = "b", .shape = {1}});
  t.allocate(1);
  a.grad.ptr<float>()[0] = 3.f;
  a.grad.ptr<float>()[1] = 0.f;
  b.grad.ptr<float>()[0] = 4.f;
  GradClip c = clip_grad_norm(t, 1.0);
  EXPECT_DOUBLE_EQ(c.norm, 5.0);
  EXPECT_NEAR(c.coefficient, 1.0 / (5.0 + 1e-6), 1e-7);
  EXPECT_EQ(clip_grad_norm(t, 10.0).coefficient, 1.f);
  EXPECT_EQ(clip_grad_norm(t, 0.0).coefficient, 1.f);  // clipping off
}

}  // namespace
}  // namespace foundry
