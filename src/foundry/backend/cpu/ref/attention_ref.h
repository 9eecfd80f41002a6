// Naive reference attention for tests: materialises each query row's scores in f64 and follows
// the textbook formulas (softmax, then its Jacobian), same contract as ops/attention.h.
#pragma once

#include "foundry/ops/attention.h"

namespace foundry::ref {

// Writes (=) out and lse.
void attention_forward(const AttentionArgs& args);
// Writes (=) dq, dk, dv; recomputes the probabilities itself (ignores out and lse).
void attention_backward(const AttentionArgs& args);

}  // namespace foundry::ref
