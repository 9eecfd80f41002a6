// DType: the element types foundry stores, with exact conversions between f32 and the 16-bit
// floats. bf16/f16 use round-to-nearest-even; NaN stays NaN (quiet) and Inf stays Inf.
// f16 follows IEEE 754 binary16 (subnormals kept, overflow rounds to Inf).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace foundry {

enum class DType : uint8_t { f32, bf16, f16, e4m3, e5m2, e2m1, e8m0, i8, i32, i64, u8, boolean };

// Bytes per element. e2m1 (FP4) is packed two per byte: dtype_size returns 1 and callers that
// store e2m1 use dtype_storage_bytes.
constexpr int64_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::bf16: case DType::f16: return 2;
    case DType::i64: return 8;
    default: return 1;
  }
}

// Bytes needed to hold n elements of t (e2m1 packs two per byte).
constexpr int64_t dtype_storage_bytes(DType t, int64_t n) {
  return t == DType::e2m1 ? (n + 1) / 2 : n * dtype_size(t);
}

std::string_view dtype_name(DType t);
// Parses "f32", "float32", "bf16", "bfloat16", ...; throws foundry::Error naming the value.
DType dtype_from_name(std::string_view name);

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// f32 -> bf16, round to nearest even; NaN becomes a quiet NaN with the sign kept.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

// Strongly typed 16-bit float holders so that templates can dispatch on them.
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) : bits(f32_to_bf16(f)) {}
  explicit operator float() const { return bf16_to_f32(bits); }
};
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  explicit f16(float f) : bits(f32_to_f16(f)) {}
  explicit operator float() const { return f16_to_f32(bits); }
};

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<bf16>() { return DType::bf16; }
template <> constexpr DType dtype_of<f16>() { return DType::f16; }
template <> constexpr DType dtype_of<int8_t>() { return DType::i8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<bool>() { return DType::boolean; }

}  // namespace foundry
