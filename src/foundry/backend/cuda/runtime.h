// Host-side CUDA services used by core: device count, memory, copies. Compiled only with CUDA.
#pragma once

#include <cstddef>

namespace foundry::cuda {

int device_count();  // 0 when the driver finds no GPU
void* malloc_on(int device, size_t bytes);
void free_on(int device, void* ptr);
void copy(void* dst, const void* src, size_t bytes);  // any direction (unified addressing)
void memset_zero(void* ptr, size_t bytes);
void synchronize();

}  // namespace foundry::cuda
