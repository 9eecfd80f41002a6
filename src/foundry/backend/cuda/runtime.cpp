#include "foundry/backend/cuda/runtime.h"

#include "foundry/backend/cuda/cuda_check.h"

namespace foundry::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

void* malloc_on(int device, size_t bytes) {
  FOUNDRY_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  FOUNDRY_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void free_on(int device, void* ptr) {
  cudaSetDevice(device);
  cudaFree(ptr);
}

void copy(void* dst, const void* src, size_t bytes) {
  FOUNDRY_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

void memset_zero(void* ptr, size_t bytes) { FOUNDRY_CUDA_CHECK(cudaMemset(ptr, 0, bytes)); }

void synchronize() { FOUNDRY_CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace foundry::cuda
