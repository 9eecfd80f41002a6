#include "foundry/optim/lr_schedule.h"

#include <cmath>

#include "testing.h"

namespace foundry {
namespace {

constexpr double kPi = 3.14159265358979323846;

TEST(LRSchedule, WarmupThenCosineLikeMegatron) {
  LRSchedule s{.max_lr = 1.0f, .min_lr = 0.1f, .warmup_steps = 10, .decay_steps = 110,
               .style = LRSchedule::Style::cosine};
  EXPECT_FLOAT_EQ(s.lr(0), 0.f);  // Megatron's first iteration runs at init_lr
  EXPECT_FLOAT_EQ(s.lr(5), 0.5f);
  EXPECT_FLOAT_EQ(s.lr(10), 1.f);
  EXPECT_FLOAT_EQ(s.lr(60), static_cast<float>(0.1 + 0.9 * 0.5 * (std::cos(kPi * 0.5) + 1)));
  EXPECT_FLOAT_EQ(s.lr(85), static_cast<float>(0.1 + 0.9 * 0.5 * (std::cos(kPi * 0.75) + 1)));
  EXPECT_FLOAT_EQ(s.lr(110), 0.1f);
  EXPECT_FLOAT_EQ(s.lr(500), 0.1f);
}

TEST(LRSchedule, LinearConstantAndInverseSquareRoot) {
  LRSchedule lin{.max_lr = 2.f, .min_lr = 0.f, .warmup_steps = 0, .decay_steps = 100,
                 .style = LRSchedule::Style::linear};
  EXPECT_FLOAT_EQ(lin.lr(0), 2.f);
  EXPECT_FLOAT_EQ(lin.lr(25), 1.5f);
  EXPECT_FLOAT_EQ(lin.lr(100), 0.f);
  LRSchedule flat{.max_lr = 3e-4f, .warmup_steps = 4, .decay_steps = 10};
  EXPECT_FLOAT_EQ(flat.lr(2), 1.5e-4f);
  EXPECT_FLOAT_EQ(flat.lr(1000), 3e-4f);
  LRSchedule isr{.max_lr = 1.f, .min_lr = 0.05f, .warmup_steps = 4, .decay_steps = 10,
                 .style = LRSchedule::Style::inverse_square_root};
  EXPECT_FLOAT_EQ(isr.lr(16), 0.5f);   // sqrt(4) / sqrt(16)
  EXPECT_FLOAT_EQ(isr.lr(6400), 0.05f);  // floored at min_lr
}

TEST(LRSchedule, WarmupStableDecay) {
  LRSchedule wsd{.max_lr = 1.f, .min_lr = 0.f, .warmup_steps = 10, .decay_steps = 100,
                 .style = LRSchedule::Style::wsd, .wsd_decay_steps = 20,
                 .wsd_style = LRSchedule::WsdStyle::linear};
  EXPECT_FLOAT_EQ(wsd.lr(50), 1.f);  // stable phase
  EXPECT_FLOAT_EQ(wsd.lr(80), 1.f);  // anneal starts after decay_steps - wsd_decay_steps
  EXPECT_FLOAT_EQ(wsd.lr(90), 0.5f);
  EXPECT_FLOAT_EQ(wsd.lr(100), 0.f);
  wsd.wsd_style = LRSchedule::WsdStyle::exponential;
  EXPECT_FLOAT_EQ(wsd.lr(90), static_cast<float>(2 * std::pow(0.5, 0.5) - 1));
  wsd.wsd_style = LRSchedule::WsdStyle::minus_sqrt;
  EXPECT_FLOAT_EQ(wsd.lr(85), static_cast<float>(1 - std::sqrt(0.25)));
  wsd.wsd_style = LRSchedule::WsdStyle::cosine;
  EXPECT_FLOAT_EQ(wsd.lr(90), 0.5f);
}

TEST(LRSchedule, ParsesMegatronNames) {
  EXPECT_EQ(LRSchedule::parse_style("WSD"), LRSchedule::Style::wsd);
  EXPECT_EQ(LRSchedule::parse_style("inverse-square-root"), LRSchedule::Style::inverse_square_root);
  EXPECT_EQ(LRSchedule::parse_wsd_style("minus_sqrt"), LRSchedule::WsdStyle::minus_sqrt);
  EXPECT_THROW(LRSchedule::parse_style("cosin"), Error);
}

}  // namespace
}  // namespace foundry
