// CPU grouped GEMM (contract in ops/grouped_gemm.h): one OpenMP loop over (group, block) work
// items, each a single-threaded oneDNN matmul.
#pragma once

#include "foundry/ops/grouped_gemm.h"

namespace foundry::cpu {

// Arguments already validated by ops/grouped_gemm.cpp.
void grouped_gemm(const GroupedGemmArgs& args);

}  // namespace foundry::cpu
