// A synthetic corpus for smoke runs and benchmarks: token sequences from a noisy successor
// grammar, next = (7 * prev + 3) mod V with probability 0.9, else uniform. A model can learn it
// (the loss floor is about 0.1 * ln V + 0.33 nats), so the default recipe shows learning with no
// data files. Drawn from Philox(seed) at a per-batch offset: batch i is the same on every run.
#pragma once

#include "foundry/data/batch.h"

namespace foundry {

Batch synthetic_batch(int64_t batch, int64_t seq, int64_t vocab, uint64_t seed, int64_t index);

}  // namespace foundry
