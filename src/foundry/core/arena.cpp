#include "foundry/core/arena.h"

namespace foundry {

Arena::Arena(int64_t capacity_bytes, Device device)
    : buffer_(Tensor::zeros({capacity_bytes}, DType::u8, device)) {}

Tensor Arena::take(const Shape& shape, DType dtype) {
  const int64_t bytes = aligned(dtype_storage_bytes(dtype, shape.numel()));
  FOUNDRY_CHECK(used_ + bytes <= capacity(), "Arena: {} bytes requested for {}{}, {} of {} left",
                bytes, dtype_name(dtype), shape.str(), capacity() - used_, capacity());
  Tensor region = buffer_.slice(used_, used_ + bytes);  // u8 bytes, same storage
  used_ += bytes;
  return region.reinterpret(shape, dtype);
}

void Arena::zero_() { buffer_.zero_(); }

}  // namespace foundry
