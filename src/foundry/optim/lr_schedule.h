// Learning-rate schedules with Megatron-Core's semantics (megatron/core/optimizer_param_scheduler.py,
// OptimizerParamScheduler.get_lr): linear warmup from `init_lr` over `warmup_steps`, then
//   constant:              max_lr
//   linear:                min_lr + (1 - r) (max_lr - min_lr)
//   cosine:                min_lr + 0.5 (cos(pi r) + 1) (max_lr - min_lr)
//   inverse-square-root:   max(min_lr, max_lr sqrt(max(warmup_steps, 1)) / sqrt(max(step, 1)))
//   WSD (warmup-stable-decay): max_lr until decay_steps - wsd_decay_steps, then annealed to
//                          min_lr over wsd_decay_steps by wsd_decay_style
//                          (linear 1 - r, cosine 0.5 (cos(pi r) + 1), exponential 2 * 0.5^r - 1,
//                          minus_sqrt 1 - sqrt(r))
// with r = (step - warmup_steps) / (decay_steps - warmup_steps), and min_lr after decay_steps.
// `step` counts completed optimizer steps, so iteration i (1-based) trains at lr(i - 1).
#pragma once

#include <cstdint>
#include <string>

namespace foundry {

struct LRSchedule {
  enum class Style { constant, linear, cosine, inverse_square_root, wsd };
  enum class WsdStyle { linear, cosine, exponential, minus_sqrt };

  float max_lr = 1e-3f;
  float min_lr = 0.f;
  float init_lr = 0.f;  // warmup starts here
  int64_t warmup_steps = 0;
  int64_t decay_steps = 0;  // 0: train_iters
  Style style = Style::constant;
  int64_t wsd_decay_steps = 0;
  WsdStyle wsd_style = WsdStyle::exponential;

  float lr(int64_t step) const;

  static Style parse_style(const std::string& name);        // Megatron's --lr-decay-style names
  static WsdStyle parse_wsd_style(const std::string& name);  // Megatron's --lr-wsd-decay-style names
};

}  // namespace foundry
