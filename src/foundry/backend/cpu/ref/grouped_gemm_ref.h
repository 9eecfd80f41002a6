// Naive reference grouped GEMM for tests (f64 loops), same contract as ops/grouped_gemm.h.
#pragma once

#include "foundry/ops/grouped_gemm.h"

namespace foundry::ref {

void grouped_gemm(const GroupedGemmArgs& args);

}  // namespace foundry::ref
