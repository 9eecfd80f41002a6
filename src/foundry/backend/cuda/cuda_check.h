// FOUNDRY_CUDA_CHECK: turns a CUDA runtime error into foundry::Error with the call's text.
// CUDA 13 changed some runtime signatures; wrappers for such calls also live here.
#pragma once

#include <cuda_runtime.h>

#include "foundry/core/check.h"

#define FOUNDRY_CUDA_CHECK(call)                                                          \
  do {                                                                                    \
    const cudaError_t foundry_cuda_status = (call);                                       \
    FOUNDRY_CHECK(foundry_cuda_status == cudaSuccess, "CUDA error {} in {}",              \
                  cudaGetErrorString(foundry_cuda_status), #call);                        \
  } while (0)
