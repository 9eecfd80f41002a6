// Naive reference cross-entropy for tests: each row's softmax materialised in f64, same contract
// as ops/loss.h (formulas there).
#pragma once

#include "foundry/ops/loss.h"

namespace foundry::ref {

CrossEntropyResult cross_entropy(const CrossEntropyArgs& args);

}  // namespace foundry::ref
