// CPU activations, SwiGLU and softmax (contracts in ops/activation.h): OpenMP over elements or
// rows, vectorised inner loops using the branch-free exp/sigmoid/Phi of vector_math.h.
#pragma once

#include "foundry/ops/activation.h"

namespace foundry::cpu {

void activation_forward(const ActivationArgs& args);
void activation_backward(const ActivationArgs& args);
void swiglu_forward(const SwigluArgs& args);
void swiglu_backward(const SwigluArgs& args);
void softmax_forward(const SoftmaxArgs& args);
void softmax_backward(const SoftmaxArgs& args);

}  // namespace foundry::cpu
