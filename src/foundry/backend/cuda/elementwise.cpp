#include "foundry/backend/cuda/elementwise.h"

#include "foundry/backend/cuda/cuda_check.h"
#include "foundry/backend/cuda/elementwise_kernels.h"

namespace foundry::cuda {

void add_forward(const AddArgs& a) {
  FOUNDRY_CUDA_CHECK(static_cast<cudaError_t>(
      kernels::add(a.a.ptr<float>(), a.b.ptr<float>(), a.out.ptr<float>(), a.out.numel())));
}

void add_backward(const AddArgs& a) {
  if (a.da.defined())
    FOUNDRY_CUDA_CHECK(static_cast<cudaError_t>(
        kernels::accumulate(a.dout.ptr<float>(), a.da.ptr<float>(), a.dout.numel())));
  if (a.db.defined())
    FOUNDRY_CUDA_CHECK(static_cast<cudaError_t>(
        kernels::accumulate(a.dout.ptr<float>(), a.db.ptr<float>(), a.dout.numel())));
}

}  // namespace foundry::cuda
