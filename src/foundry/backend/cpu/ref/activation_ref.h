// Naive reference activations, SwiGLU and softmax for tests (f64 arithmetic with libm's
// exp/tanh/erf, the formulas exactly as written in ops/activation.h).
#pragma once

#include "foundry/ops/activation.h"

namespace foundry::ref {

void activation_forward(const ActivationArgs& args);
void activation_backward(const ActivationArgs& args);  // dx = dy f'(x), written (=)
void swiglu_forward(const SwigluArgs& args);
void swiglu_backward(const SwigluArgs& args);          // dx written (=)
void softmax_forward(const SoftmaxArgs& args);
void softmax_backward(const SoftmaxArgs& args);        // dx written (=)

}  // namespace foundry::ref
