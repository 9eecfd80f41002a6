// Shared pieces of the PyTorch-parity tests (gpt_parity_test, moe_parity_test): model weights
// from a fixture, tensors compared by parameter name, and the fixture's AdamW settings.
#pragma once

#include <cmath>
#include <string>

#include "fixture.h"
#include "foundry/models/gpt/gpt_model.h"
#include "foundry/optim/adamw.h"
#include "testing.h"

namespace foundry::testing {

inline double rel_diff(double a, double b) { return std::abs(a - b) / std::abs(b); }

// Every model parameter from the fixture entry of the same name (after `prefix`).
inline void load_weights(GPTModel& m, const Fixture& fx, const std::string& prefix = "") {
  for (int i = 0; i < m.params().size(); ++i)
    m.params().param(i).value.copy_from(fx.at(prefix + m.params().spec(i).name));
}

// Each parameter's gradient (or value) against the fixture entry `prefix + name`, within `tol`
// relative to its norm.
inline void expect_params_match(const ParamTable& t, bool gradients, const Fixture& fx, const std::string& prefix,
                                double tol) {
  for (int i = 0; i < t.size(); ++i) {
    const std::string& name = t.spec(i).name;
    const Tensor& mine = gradients ? t.param(i).grad : t.param(i).value;
    EXPECT_TRUE(close_in_norm(mine, fx.at(prefix + name), tol)) << prefix << name;
  }
}

// The fixture's "adamw" entry: [lr, beta1, beta2, eps, weight_decay, clip].
struct FixtureAdamW {
  AdamW::Config config;
  float clip = 0.f;
};
inline FixtureAdamW adamw_of(const Fixture& fx) {
  const float* h = fx.at("adamw").ptr<float>();
  return {.config = {.lr = h[0], .beta1 = h[1], .beta2 = h[2], .eps = h[3], .weight_decay = h[4]}, .clip = h[5]};
}

}  // namespace foundry::testing
