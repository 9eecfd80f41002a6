// CPU optimizer kernels (contract and formulas in ops/optim.h). Arguments reach these already
// validated by ops/optim.cpp.
#pragma once

#include "foundry/ops/optim.h"

namespace foundry::cpu {

// param, exp_avg, exp_avg_sq updated in place (=).
void adamw_step(const AdamWArgs& args);
// f32 or bf16 gradients; deterministic for any thread count.
double global_grad_norm(std::span<const TensorView> grads);
// f32 or bf16, in place.
void scale_(const TensorView& t, float s);

}  // namespace foundry::cpu
