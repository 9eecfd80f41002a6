// Rotary position embedding, rotate-half layout (GPT-NeoX / Llama / Megatron's default).
// With R = HD * rotary_percent rotated dims (R even) and inv_freq[i] = theta^(-2i / R), i < R/2:
//   out[i]       = x[i] * cos(p * inv_freq[i]) - x[i + R/2] * sin(p * inv_freq[i])
//   out[i + R/2] = x[i + R/2] * cos(p * inv_freq[i]) + x[i] * sin(p * inv_freq[i])
// dims >= R pass through unchanged. The rotation is orthogonal, so backward applies the
// inverse rotation (angle -p * inv_freq) to dy.
//
// Llama 3 frequency scaling (scaling.enabled; Hugging Face rope_type "llama3",
// transformers modeling_rope_utils._compute_llama3_parameters; Megatron-Core's apply_scaling in
// megatron/core/models/common/embeddings/rotary_pos_embedding.py, --use-rope-scaling). With
// old = original_max_position_embeddings, wavelen_i = 2 pi / inv_freq[i],
// low_wavelen = old / low_freq_factor, high_wavelen = old / high_freq_factor:
//   inv_freq'[i] = inv_freq[i] / factor                     if wavelen_i > low_wavelen
//                = inv_freq[i]                              if wavelen_i < high_wavelen
//                = (1 - s) inv_freq[i] / factor + s inv_freq[i] otherwise,
//   s = (old / wavelen_i - low_freq_factor) / (high_freq_factor - low_freq_factor).
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct RopeScaling {
  bool enabled = false;
  float factor = 8.f;
  float low_freq_factor = 1.f;
  float high_freq_factor = 4.f;
  int64_t original_max_position_embeddings = 8192;
};

struct RopeArgs {
  TensorView positions;  // (T) i32, the position of each token (restarts per packed document)
  float theta = 10000.f;
  float rotary_percent = 1.f;  // fraction of HD that is rotated
  RopeScaling scaling;         // Llama 3 frequency scaling; off by default
  TensorView x;    // (T, NH, HD) f32, forward input
  TensorView out;  // (T, NH, HD) f32, forward output; may alias x
  TensorView dy;   // (T, NH, HD) f32, backward input
  TensorView dx;   // (T, NH, HD) f32, backward output (=); may alias dy
};

void rope_forward(const RopeArgs& args);
void rope_backward(const RopeArgs& args);

}  // namespace foundry
