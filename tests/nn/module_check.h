// Finite-difference checks for nn modules: the scalar loss is dot(forward(x), w) for a fixed
// random cotangent w; the analytic gradients come from one backward with dy = w.
#pragma once

#include <functional>

#include "testing.h"

namespace foundry::testing {

// Checks d loss / d x against finite differences; `forward` must recompute from x.
inline ::testing::AssertionResult check_input_gradient(const std::function<Tensor()>& forward,
                                                       const Tensor& x, const Tensor& w,
                                                       const Tensor& analytic_dx) {
  return finite_difference_check([&] { return dot(forward(), w); }, x, analytic_dx);
}

}  // namespace foundry::testing
