// Rotary position embedding, rotate-half layout (GPT-NeoX / Llama / Megatron's default).
// With R = HD * rotary_percent rotated dims (R even) and inv_freq[i] = theta^(-2i / R), i < R/2:
//   out[i]       = x[i] * cos(p * inv_freq[i]) - x[i + R/2] * sin(p * inv_freq[i])
//   out[i + R/2] = x[i + R/2] * cos(p * inv_freq[i]) + x[i] * sin(p * inv_freq[i])
// dims >= R pass through unchanged. The rotation is orthogonal, so backward applies the
// inverse rotation (angle -p * inv_freq) to dy.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct RopeArgs {
  TensorView positions;  // (T) i32, the position of each token (restarts per packed document)
  float theta = 10000.f;
  float rotary_percent = 1.f;  // fraction of HD that is rotated
  TensorView x;    // (T, NH, HD) f32, forward input
  TensorView out;  // (T, NH, HD) f32, forward output; may alias x
  TensorView dy;   // (T, NH, HD) f32, backward input
  TensorView dx;   // (T, NH, HD) f32, backward output (=); may alias dy
};

void rope_forward(const RopeArgs& args);
void rope_backward(const RopeArgs& args);

}  // namespace foundry
