// Residual add on CUDA: grid-stride loops over n elements.
#include <cuda_runtime.h>

#include <algorithm>

#include "foundry/backend/cuda/elementwise_kernels.h"

namespace foundry::cuda::kernels {

namespace {
__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    out[i] = a[i] + b[i];
}
__global__ void accumulate_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    y[i] += x[i];
}
unsigned blocks_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 65535)); }
}  // namespace

int add(const float* a, const float* b, float* out, int64_t n) {
  if (n > 0) add_kernel<<<blocks_for(n), 256>>>(a, b, out, n);
  return static_cast<int>(cudaGetLastError());
}

int accumulate(const float* x, float* y, int64_t n) {
  if (n > 0) accumulate_kernel<<<blocks_for(n), 256>>>(x, y, n);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace foundry::cuda::kernels
