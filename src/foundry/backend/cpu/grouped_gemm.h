// CPU grouped GEMM (contract in ops/grouped_gemm.h): one cpu::gemm (oneDNN matmul, cached
// primitive) per group.
#pragma once

#include "foundry/ops/grouped_gemm.h"

namespace foundry::cpu {

// Arguments already validated by ops/grouped_gemm.cpp.
void grouped_gemm(const GroupedGemmArgs& args);

}  // namespace foundry::cpu
