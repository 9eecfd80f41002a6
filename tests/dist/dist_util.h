// Helpers for the multi-rank tests: tensors of any dtype filled from f(rank, i), read back as
// doubles. Values are small integers or multiples of 1/4 so every sum is exact in every dtype
// (bf16 included), and expected results can be computed locally and compared with ==.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

#include "foundry/core/tensor.h"

namespace foundry::testing {

inline Tensor filled(DType t, int64_t n, const std::function<double(int64_t)>& f) {
  Tensor x = Tensor::empty({n}, t);
  for (int64_t i = 0; i < n; ++i) {
    const double v = f(i);
    switch (t) {
      case DType::f32: x.ptr<float>()[i] = static_cast<float>(v); break;
      case DType::bf16: x.ptr<bf16>()[i] = bf16(static_cast<float>(v)); break;
      case DType::f16: x.ptr<f16>()[i] = f16(static_cast<float>(v)); break;
      case DType::i8: x.ptr<int8_t>()[i] = static_cast<int8_t>(v); break;
      case DType::i32: x.ptr<int32_t>()[i] = static_cast<int32_t>(v); break;
      case DType::i64: x.ptr<int64_t>()[i] = static_cast<int64_t>(v); break;
      case DType::u8: x.ptr<uint8_t>()[i] = static_cast<uint8_t>(v); break;
      default: ADD_FAILURE() << "filled: unsupported dtype";
    }
  }
  return x;
}

inline std::vector<double> values(const Tensor& x) {
  std::vector<double> v(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    switch (x.dtype()) {
      case DType::f32: v[i] = x.ptr<float>()[i]; break;
      case DType::bf16: v[i] = static_cast<float>(x.ptr<bf16>()[i]); break;
      case DType::f16: v[i] = static_cast<float>(x.ptr<f16>()[i]); break;
      case DType::i8: v[i] = x.ptr<int8_t>()[i]; break;
      case DType::i32: v[i] = x.ptr<int32_t>()[i]; break;
      case DType::i64: v[i] = static_cast<double>(x.ptr<int64_t>()[i]); break;
      case DType::u8: v[i] = x.ptr<uint8_t>()[i]; break;
      default: ADD_FAILURE() << "values: unsupported dtype";
    }
  }
  return v;
}

}  // namespace foundry::testing
