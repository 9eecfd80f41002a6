// Naive reference GEMM for tests: triple loop in f64, same contract as ops/gemm.h.
#pragma once

#include "foundry/ops/gemm.h"

namespace foundry::ref {

void gemm(const GemmArgs& args);

}  // namespace foundry::ref
