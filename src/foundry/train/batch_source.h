// BatchSource: where the trainer's microbatches come from. The position (samples consumed) is
// part of a checkpoint, so a resumed run sees exactly the batches it would have seen.
#pragma once

#include "foundry/data/batch.h"

namespace foundry {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual Batch next() = 0;                     // the next microbatch
  virtual int64_t consumed_samples() const = 0;  // sequences handed out so far
  virtual void seek(int64_t consumed_samples) = 0;  // continue as if that many had been consumed
};

// The built-in synthetic corpus (train/synthetic_data.h) as a source: microbatch i is
// synthetic_batch(..., seed, i).
class SyntheticBatchSource final : public BatchSource {
 public:
  SyntheticBatchSource(int64_t micro_batch, int64_t seq, int64_t vocab, uint64_t seed)
      : micro_batch_(micro_batch), seq_(seq), vocab_(vocab), seed_(seed) {}
  Batch next() override;
  int64_t consumed_samples() const override { return consumed_; }
  void seek(int64_t consumed_samples) override;

 private:
  int64_t micro_batch_, seq_, vocab_;
  uint64_t seed_;
  int64_t consumed_ = 0;
};

}  // namespace foundry
