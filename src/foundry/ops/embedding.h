// Embedding lookup: out[n] = table[ids[n]]; backward scatters dout back into the table rows.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct EmbeddingArgs {
  TensorView ids;     // (N) i32, each in [0, V); anything else is an error naming the id
  TensorView table;   // (V, H) f32
  TensorView out;     // (N, H) f32, forward output
  TensorView dout;    // (N, H) f32, backward input
  TensorView dtable;  // (V, H) f32, backward output, accumulated (+=)
};

void embedding_forward(const EmbeddingArgs& args);
void embedding_backward(const EmbeddingArgs& args);

}  // namespace foundry
