// Arena: one allocation carved into aligned sub-tensors by a bump pointer. Parameters, gradients
// and optimizer state each live in one arena, so zeroing gradients is one memset, a checkpoint
// is one contiguous write and ZeRO shards are offset ranges.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

class Arena {
 public:
  static constexpr int64_t kAlign = 64;  // bytes; keeps every sub-tensor cache-line aligned

  Arena() = default;
  Arena(int64_t capacity_bytes, Device device = Device::cpu());

  // Bytes a sequence of tensors of these sizes occupies once aligned.
  static int64_t aligned(int64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

  Tensor take(const Shape& shape, DType dtype);  // throws when the arena is full
  void reset() { used_ = 0; }
  void zero_();  // zeroes the whole buffer

  int64_t used() const { return used_; }
  int64_t capacity() const { return buffer_.defined() ? buffer_.nbytes() : 0; }
  const Tensor& buffer() const { return buffer_; }  // u8 (capacity,)

 private:
  Tensor buffer_;
  int64_t used_ = 0;
};

}  // namespace foundry
