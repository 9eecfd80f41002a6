#include "foundry/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "foundry/core/check.h"

namespace foundry {

namespace {
constexpr double kPi = 3.14159265358979323846;
}

float LRSchedule::lr(int64_t step) const {
  const double max = max_lr, min = min_lr;
  if (warmup_steps > 0 && step <= warmup_steps)
    return static_cast<float>(init_lr + (max - init_lr) * static_cast<double>(step) / static_cast<double>(warmup_steps));
  if (style == Style::constant) return max_lr;
  if (style == Style::inverse_square_root) {
    const double warmup = static_cast<double>(std::max<int64_t>(warmup_steps, 1));
    const double s = static_cast<double>(std::max<int64_t>(step, 1));
    return static_cast<float>(std::max(min, max * std::sqrt(warmup) / std::sqrt(s)));
  }
  if (step > decay_steps) return min_lr;
  double coeff;
  if (style == Style::wsd) {
    const int64_t anneal_start = decay_steps - wsd_decay_steps;
    if (step <= anneal_start) {
      coeff = 1.0;
    } else {
      const double r = static_cast<double>(step - anneal_start) / static_cast<double>(wsd_decay_steps);
      switch (wsd_style) {
        case WsdStyle::linear: coeff = 1.0 - r; break;
        case WsdStyle::cosine: coeff = 0.5 * (std::cos(kPi * r) + 1.0); break;
        case WsdStyle::exponential: coeff = 2.0 * std::pow(0.5, r) - 1.0; break;
        case WsdStyle::minus_sqrt: coeff = 1.0 - std::sqrt(r); break;
      }
    }
  } else {
    const double r = static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps - warmup_steps);
    coeff = style == Style::linear ? 1.0 - r : 0.5 * (std::cos(kPi * r) + 1.0);
  }
  return static_cast<float>(min + coeff * (max - min));
}

LRSchedule::Style LRSchedule::parse_style(const std::string& n) {
  if (n == "constant") return Style::constant;
  if (n == "linear") return Style::linear;
  if (n == "cosine") return Style::cosine;
  if (n == "inverse-square-root") return Style::inverse_square_root;
  if (n == "WSD" || n == "wsd") return Style::wsd;
  FOUNDRY_FAIL("train.lr_decay_style '{}' is not one of constant, linear, cosine, inverse-square-root, WSD", n);
}

LRSchedule::WsdStyle LRSchedule::parse_wsd_style(const std::string& n) {
  if (n == "linear") return WsdStyle::linear;
  if (n == "cosine") return WsdStyle::cosine;
  if (n == "exponential") return WsdStyle::exponential;
  if (n == "minus_sqrt") return WsdStyle::minus_sqrt;
  FOUNDRY_FAIL("train.lr_wsd_decay_style '{}' is not one of linear, cosine, exponential, minus_sqrt", n);
}

}  // namespace foundry
