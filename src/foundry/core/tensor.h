// Tensor (owning, refcounted storage + byte offset) and TensorView (non-owning, trivially
// copyable). Both are dense row-major; ops that need leading dimensions take them explicitly
// in their args structs. A Tensor converts to a TensorView implicitly, so op args accept either.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "foundry/core/allocator.h"
#include "foundry/core/check.h"
#include "foundry/core/device.h"
#include "foundry/core/dtype.h"
#include "foundry/core/shape.h"

namespace foundry {

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  Shape shape;
  Device device;

  bool defined() const { return data != nullptr; }
  int64_t numel() const { return shape.numel(); }
  int64_t nbytes() const { return dtype_storage_bytes(dtype, numel()); }
  int ndim() const { return shape.ndim(); }
  int64_t size(int i) const { return shape[i]; }

  // Typed pointer; throws when T does not match dtype.
  template <class T> T* ptr() const {
    FOUNDRY_CHECK(dtype_of<T>() == dtype, "tensor of dtype {} read as {}", dtype_name(dtype),
                  dtype_name(dtype_of<T>()));
    return static_cast<T*>(data);
  }
  // Same memory, new shape of the same numel.
  TensorView reshape(const Shape& s) const;
  // Rows [begin, end) of dimension 0.
  TensorView slice(int64_t begin, int64_t end) const;
  std::string str() const;  // "f32(2, 3) cpu"
};

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, DType dtype = DType::f32);
  template <class T> static Tensor from(const Shape& shape, std::span<const T> values);
  static Tensor from(const Shape& shape, std::initializer_list<float> values) {
    return from<float>(shape, std::span<const float>(values.begin(), values.size()));
  }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu(); }
  int ndim() const { return shape_.ndim(); }
  int64_t size(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  int64_t nbytes() const { return dtype_storage_bytes(dtype_, numel()); }
  void* data() const { return storage_ ? static_cast<char*>(storage_->ptr) + offset_ : nullptr; }
  template <class T> T* ptr() const { return view().ptr<T>(); }

  TensorView view() const { return {data(), dtype_, shape_, device()}; }
  operator TensorView() const { return view(); }

  // Views sharing storage.
  Tensor reshape(const Shape& s) const;
  Tensor slice(int64_t begin, int64_t end) const;  // rows of dimension 0
  // Same bytes read as another dtype and shape; the new view must fit in this one's bytes.
  Tensor reinterpret(const Shape& s, DType dtype) const;

  Tensor clone() const;
  Tensor to_device(Device device) const;  // copy to another device (same dtype and shape)
  Tensor to(DType dtype) const;           // element conversion (f32 <-> bf16/f16, ints)
  void zero_();
  void copy_from(const TensorView& src);  // same numel and dtype
  std::vector<float> to_vector() const;   // f32/bf16/f16 read back as float
  std::string str() const { return view().str(); }

 private:
  struct Storage {
    void* ptr = nullptr;
    size_t bytes = 0;
    Device device;
    ~Storage();
  };
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::f32;
};

template <class T>
Tensor Tensor::from(const Shape& shape, std::span<const T> values) {
  FOUNDRY_CHECK(static_cast<int64_t>(values.size()) == shape.numel(),
                "Tensor::from: {} values for shape {}", values.size(), shape.str());
  Tensor t = empty(shape, dtype_of<T>());
  std::copy(values.begin(), values.end(), t.ptr<T>());
  return t;
}

// Checks used by ops: each names the op and the tensors involved.
void check_shape(std::string_view op, std::string_view what, const TensorView& t, const Shape& expected);
void check_dtype(std::string_view op, std::string_view what, const TensorView& t, DType expected);
void check_same_device(std::string_view op, const TensorView& a, const TensorView& b);

}  // namespace foundry
