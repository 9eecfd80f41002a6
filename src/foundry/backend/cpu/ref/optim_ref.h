// Naive reference optimizer ops for tests: plain loops in f64, same contract as ops/optim.h.
#pragma once

#include "foundry/ops/optim.h"

namespace foundry::ref {

// AdamW with every element's arithmetic in f64 (state still stored as f32).
void adamw_step(const AdamWArgs& args);
// sqrt of the sum of squares, one serial f64 loop over all f32 gradients.
double global_grad_norm(std::span<const TensorView> grads);

}  // namespace foundry::ref
