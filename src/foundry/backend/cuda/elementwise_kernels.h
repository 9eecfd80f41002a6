// Residual-add kernels over plain device pointers (no foundry headers: compiled by nvcc).
// Each launcher returns the cudaError_t of the launch as an int.
#pragma once

#include <cstdint>

namespace foundry::cuda::kernels {

int add(const float* a, const float* b, float* out, int64_t n);  // out = a + b
int accumulate(const float* x, float* y, int64_t n);             // y += x

}  // namespace foundry::cuda::kernels
