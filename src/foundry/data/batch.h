// Batch: one microbatch of token ids for a language model, as the trainer consumes it.
#pragma once

#include "foundry/nn/attention.h"

namespace foundry {

struct Batch {
  Tensor tokens;   // (T) i32, T = B * S
  Tensor targets;  // (T) i32, the next token of each position (ignore_index where masked)
  SequenceLayout layout;
};

}  // namespace foundry
