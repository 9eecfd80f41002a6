#include "foundry/core/tensor.h"

#include <cstring>

#ifdef FOUNDRY_HAVE_CUDA
#include "foundry/backend/cuda/runtime.h"
#endif

namespace foundry {

TensorView TensorView::reshape(const Shape& s) const {
  FOUNDRY_CHECK(s.numel() == numel(), "reshape: cannot view {} as {}", shape.str(), s.str());
  return {data, dtype, s, device};
}

TensorView TensorView::slice(int64_t begin, int64_t end) const {
  FOUNDRY_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= shape[0],
                "slice: rows [{}, {}) out of range for {}", begin, end, shape.str());
  Shape s = shape;
  s[0] = end - begin;
  const int64_t row_bytes = dtype_storage_bytes(dtype, shape.numel() / std::max<int64_t>(shape[0], 1));
  return {static_cast<char*>(data) + begin * row_bytes, dtype, s, device};
}

std::string TensorView::str() const {
  return fmt::format("{}{} {}", dtype_name(dtype), shape.str(), device.str());
}

Tensor::Storage::~Storage() { Allocator::get(device).deallocate(ptr, bytes); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.storage_ = std::make_shared<Storage>();
  t.storage_->bytes = static_cast<size_t>(dtype_storage_bytes(dtype, shape.numel()));
  t.storage_->device = device;
  t.storage_->ptr = Allocator::get(device).allocate(t.storage_->bytes);
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, DType dtype) {
  Tensor t = empty(shape, DType::f32);
  float* p = t.ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return dtype == DType::f32 ? t : t.to(dtype);
}

Tensor Tensor::reshape(const Shape& s) const {
  FOUNDRY_CHECK(s.numel() == numel(), "reshape: cannot view {} as {}", shape_.str(), s.str());
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  TensorView v = view().slice(begin, end);
  Tensor t = *this;
  t.offset_ += static_cast<char*>(v.data) - static_cast<char*>(data());
  t.shape_ = v.shape;
  return t;
}

Tensor Tensor::reinterpret(const Shape& s, DType dtype) const {
  FOUNDRY_CHECK(dtype_storage_bytes(dtype, s.numel()) <= nbytes(),
                "reinterpret: {}{} does not fit in {}", dtype_name(dtype), s.str(), str());
  Tensor t = *this;
  t.shape_ = s;
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(view());
  return t;
}

void Tensor::zero_() {
  if (!defined() || nbytes() == 0) return;
  if (device().is_cpu()) {
    std::memset(data(), 0, static_cast<size_t>(nbytes()));
    return;
  }
#ifdef FOUNDRY_HAVE_CUDA
  cuda::memset_zero(data(), static_cast<size_t>(nbytes()));
#else
  FOUNDRY_FAIL("zero_: device {} not supported in this build", device().str());
#endif
}

void Tensor::copy_from(const TensorView& src) {
  FOUNDRY_CHECK(src.numel() == numel() && src.dtype == dtype_,
                "copy_from: source {} does not match destination {}", src.str(), str());
  if (nbytes() == 0) return;
  if (device().is_cpu() && src.device.is_cpu()) {
    std::memmove(data(), src.data, static_cast<size_t>(nbytes()));
    return;
  }
#ifdef FOUNDRY_HAVE_CUDA
  cuda::copy(data(), src.data, static_cast<size_t>(nbytes()));
#else
  FOUNDRY_FAIL("copy_from: {} to {} not supported in this build", src.device.str(), device().str());
#endif
}

Tensor Tensor::to_device(Device d) const {
  Tensor t = empty(shape_, dtype_, d);
  t.copy_from(view());
  return t;
}

namespace {
float load_float(const TensorView& v, int64_t i) {
  switch (v.dtype) {
    case DType::f32: return static_cast<const float*>(v.data)[i];
    case DType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(v.data)[i]);
    case DType::f16: return f16_to_f32(static_cast<const uint16_t*>(v.data)[i]);
    case DType::i32: return static_cast<float>(static_cast<const int32_t*>(v.data)[i]);
    case DType::i64: return static_cast<float>(static_cast<const int64_t*>(v.data)[i]);
    default: FOUNDRY_FAIL("cannot read dtype {} as float", dtype_name(v.dtype));
  }
}
void store_float(const TensorView& v, int64_t i, float x) {
  switch (v.dtype) {
    case DType::f32: static_cast<float*>(v.data)[i] = x; return;
    case DType::bf16: static_cast<uint16_t*>(v.data)[i] = f32_to_bf16(x); return;
    case DType::f16: static_cast<uint16_t*>(v.data)[i] = f32_to_f16(x); return;
    case DType::i32: static_cast<int32_t*>(v.data)[i] = static_cast<int32_t>(x); return;
    case DType::i64: static_cast<int64_t*>(v.data)[i] = static_cast<int64_t>(x); return;
    default: FOUNDRY_FAIL("cannot write dtype {} from float", dtype_name(v.dtype));
  }
}
}  // namespace

Tensor Tensor::to(DType dtype) const {
  FOUNDRY_CHECK(device().is_cpu(), "to({}): dtype conversion of {} tensors is not supported",
                dtype_name(dtype), device().str());
  Tensor t = empty(shape_, dtype, device());
  const TensorView src = view(), dst = t.view();
  const int64_t n = numel();
  if (dtype_ == DType::f32 && dtype == DType::bf16) {  // the mixed-precision hot path
    const float* in = src.ptr<float>();
    uint16_t* out = static_cast<uint16_t*>(dst.data);
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(in[i]);
    return t;
  }
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) store_float(dst, i, load_float(src, i));
  return t;
}

std::vector<float> Tensor::to_vector() const {
  if (!device().is_cpu()) return to_device(Device::cpu()).to_vector();
  std::vector<float> out(static_cast<size_t>(numel()));
  const TensorView v = view();
  for (int64_t i = 0; i < numel(); ++i) out[static_cast<size_t>(i)] = load_float(v, i);
  return out;
}

void check_shape(std::string_view op, std::string_view what, const TensorView& t, const Shape& expected) {
  FOUNDRY_CHECK(t.shape == expected, "{}: {} has shape {}, expected {}", op, what, t.shape.str(),
                expected.str());
}

void check_dtype(std::string_view op, std::string_view what, const TensorView& t, DType expected) {
  FOUNDRY_CHECK(t.dtype == expected, "{}: {} has dtype {}, expected {}", op, what,
                dtype_name(t.dtype), dtype_name(expected));
}

void check_same_device(std::string_view op, const TensorView& a, const TensorView& b) {
  FOUNDRY_CHECK(a.device == b.device, "{}: tensors on different devices ({} and {})", op,
                a.device.str(), b.device.str());
}

}  // namespace foundry
