// Argument checks shared by the pointwise op families (embedding, norm, rope, activation,
// elementwise): every message names the op and the offending tensor, shape, dtype or device.
#pragma once

#include <initializer_list>
#include <string_view>

#include "foundry/core/tensor.h"

namespace foundry::detail {

// A required tensor: present, of the given dtype, and (when given) of the expected shape.
inline void check_tensor(std::string_view op, std::string_view what, const TensorView& t,
                         DType dtype) {
  FOUNDRY_CHECK(t.defined(), "{}: {} is required but empty", op, what);
  check_dtype(op, what, t, dtype);
}
inline void check_tensor(std::string_view op, std::string_view what, const TensorView& t,
                         DType dtype, const Shape& shape) {
  check_tensor(op, what, t, dtype);
  check_shape(op, what, t, shape);
}

// All defined tensors share one device, and it is one this build runs on (CPU only for now).
inline void check_cpu(std::string_view op, std::initializer_list<TensorView> ts) {
  const TensorView* first = nullptr;
  for (const TensorView& t : ts) {
    if (!t.defined()) continue;
    if (first == nullptr) first = &t;
    check_same_device(op, *first, t);
  }
  FOUNDRY_CHECK(first == nullptr || first->device.is_cpu(),
                "{}: {} tensors are not supported in this build (CPU only)", op,
                first->device.str());
}

// The one device all defined tensors share (CPU when none is defined).
inline Device common_device(std::string_view op, std::initializer_list<TensorView> ts) {
  const TensorView* first = nullptr;
  for (const TensorView& t : ts) {
    if (!t.defined()) continue;
    if (first == nullptr) first = &t;
    check_same_device(op, *first, t);
  }
  return first == nullptr ? Device::cpu() : first->device;
}

[[noreturn]] inline void fail_unsupported(std::string_view op, const Device& d) {
  FOUNDRY_FAIL("{}: {} tensors are not supported in this build", op, d.str());
}

// A CUDA build on a machine whose driver does not list the device.
inline void check_cuda_present(std::string_view op, const Device& d) {
  const int count = cuda_device_count();
  FOUNDRY_CHECK(d.is_cuda() && d.index < count, "{}: device {} is not present ({} CUDA devices)", op,
                d.str(), count);
}

}  // namespace foundry::detail
