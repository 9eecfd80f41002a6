// The branch-free f32 exp of backend/cpu/vector_math.h (used by softmax, cross-entropy and the
// activations) against std::exp.
#include "foundry/backend/cpu/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace foundry {
namespace {

// Max relative error of exp_f32 over [lo, hi] sampled every `step` ulps-worth of spacing.
double max_rel_error(float lo, float hi, int64_t samples) {
  double worst = 0;
  for (int64_t i = 0; i <= samples; ++i) {
    const float x = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(samples);
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(cpu::exp_f32(x) - want) / want);
  }
  return worst;
}

TEST(ExpF32, RelativeErrorAgainstStdExp) {
  // Normal-range results: about 1 ulp (2^-23 = 1.19e-7); the bound leaves a little room for the
  // final rounding of e * 2^n.
  EXPECT_LT(max_rel_error(-87.3f, 88.7f, 3'000'017), 2e-7);
  EXPECT_LT(max_rel_error(-1.f, 1.f, 1'000'003), 2e-7);  // dense where softmax values live
  EXPECT_LT(max_rel_error(-20.f, 0.f, 1'000'003), 2e-7);
  EXPECT_EQ(cpu::exp_f32(0.f), 1.f);
}

TEST(ExpF32, EdgesOfTheRange) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(cpu::exp_f32(-inf), 0.f);
  EXPECT_EQ(cpu::exp_f32(-1000.f), 0.f);
  EXPECT_EQ(cpu::exp_f32(inf), inf);
  EXPECT_EQ(cpu::exp_f32(89.f), inf);
  EXPECT_TRUE(std::isnan(cpu::exp_f32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isfinite(cpu::exp_f32(88.72f)));
  const double big = std::exp(static_cast<double>(88.72f));
  EXPECT_NEAR(cpu::exp_f32(88.72f), big, 2e-7 * big);
  // Subnormal results: within one subnormal step (2^-149) of the true value.
  for (float x : {-87.5f, -95.f, -100.f, -103.f})
    EXPECT_NEAR(cpu::exp_f32(x), std::exp(static_cast<double>(x)), 1.5e-45) << x;
}

}  // namespace
}  // namespace foundry
