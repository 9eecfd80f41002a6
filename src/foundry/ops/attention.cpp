// Attention op: argument validation and device dispatch. Contract in ops/attention.h;
// the CPU kernel (FlashAttention-2 blocking) is backend/cpu/attention.cpp.
#include "foundry/ops/attention.h"

#include <cmath>

#include "foundry/backend/cpu/attention.h"

namespace foundry {

namespace {

constexpr int64_t kMaxHeadDim = 256;

// Checks q, k, v, the sequence layout and the scale; returns nothing, throws naming "attention".
void check_inputs(std::string_view op, const AttentionArgs& a) {
  FOUNDRY_CHECK(a.q.defined() && a.k.defined() && a.v.defined(), "{}: q, k and v are required", op);
  FOUNDRY_CHECK(a.q.ndim() == 3, "{}: q must be (T, NH, HD), got {}", op, a.q.shape.str());
  FOUNDRY_CHECK(a.k.ndim() == 3, "{}: k must be (T, NKV, HD), got {}", op, a.k.shape.str());
  check_dtype(op, "q", a.q, DType::f32);
  check_dtype(op, "k", a.k, DType::f32);
  check_dtype(op, "v", a.v, DType::f32);
  const int64_t T = a.q.size(0), NH = a.q.size(1), HD = a.q.size(2), NKV = a.k.size(1);
  FOUNDRY_CHECK(HD >= 1 && HD <= kMaxHeadDim, "{}: head dim HD = {} (q {}) must be in [1, {}]", op,
                HD, a.q.shape.str(), kMaxHeadDim);
  FOUNDRY_CHECK(NH >= 1 && NKV >= 1 && NH % NKV == 0,
                "{}: query heads NH = {} must be a multiple of kv heads NKV = {} (q {}, k {})", op,
                NH, NKV, a.q.shape.str(), a.k.shape.str());
  check_shape(op, "k", a.k, Shape{T, NKV, HD});
  check_shape(op, "v", a.v, Shape{T, NKV, HD});
  FOUNDRY_CHECK(std::isfinite(a.scale), "{}: scale {} is not finite", op, a.scale);
  if (a.cu_seqlens.defined()) {
    check_dtype(op, "cu_seqlens", a.cu_seqlens, DType::i32);
    FOUNDRY_CHECK(a.cu_seqlens.ndim() == 1 && a.cu_seqlens.numel() >= 2,
                  "{}: cu_seqlens must be (num_seqs + 1) with num_seqs >= 1, got {}", op,
                  a.cu_seqlens.shape.str());
    FOUNDRY_CHECK(a.cu_seqlens.device.is_cpu(), "{}: cu_seqlens must be on the cpu, got {}", op,
                  a.cu_seqlens.device.str());
    const int32_t* cu = a.cu_seqlens.ptr<int32_t>();
    const int64_t n = a.cu_seqlens.numel();
    FOUNDRY_CHECK(cu[0] == 0, "{}: cu_seqlens[0] = {}, expected 0", op, cu[0]);
    for (int64_t i = 1; i < n; ++i)
      FOUNDRY_CHECK(
          cu[i] >= cu[i - 1],
          "{}: cu_seqlens must be non-decreasing, but cu_seqlens[{}] = {} < cu_seqlens[{}] = {}",
          op, i, cu[i], i - 1, cu[i - 1]);
    FOUNDRY_CHECK(cu[n - 1] == T, "{}: cu_seqlens ends at {}, expected T = {} (q {})", op,
                  cu[n - 1], T, a.q.shape.str());
  } else {
    FOUNDRY_CHECK(a.batch >= 1 && T % a.batch == 0,
                  "{}: T = {} tokens (q {}) is not divisible into batch = {} equal sequences", op,
                  T, a.q.shape.str(), a.batch);
  }
}

void check_tensor(std::string_view op, std::string_view what, const TensorView& t, const Shape& s,
                  const TensorView& q) {
  FOUNDRY_CHECK(t.defined(), "{}: {} is required (expected f32{})", op, what, s.str());
  check_dtype(op, what, t, DType::f32);
  check_shape(op, what, t, s);
  check_same_device(op, q, t);
}

void check_device(std::string_view op, const AttentionArgs& a) {
  check_same_device(op, a.q, a.k);
  check_same_device(op, a.q, a.v);
  FOUNDRY_CHECK(a.q.device.is_cpu(), "{}: device {} is not supported in this build", op,
                a.q.device.str());
}

}  // namespace

void attention_forward(const AttentionArgs& a) {
  constexpr std::string_view op = "attention_forward";
  check_inputs(op, a);
  const int64_t T = a.q.size(0), NH = a.q.size(1), HD = a.q.size(2);
  check_tensor(op, "out", a.out, Shape{T, NH, HD}, a.q);
  check_tensor(op, "lse", a.lse, Shape{T, NH}, a.q);
  check_device(op, a);
  if (T == 0) return;
  cpu::attention_forward(a);
}

void attention_backward(const AttentionArgs& a) {
  constexpr std::string_view op = "attention_backward";
  check_inputs(op, a);
  const int64_t T = a.q.size(0), NH = a.q.size(1), HD = a.q.size(2), NKV = a.k.size(1);
  check_tensor(op, "out", a.out, Shape{T, NH, HD}, a.q);
  check_tensor(op, "lse", a.lse, Shape{T, NH}, a.q);
  check_tensor(op, "dout", a.dout, Shape{T, NH, HD}, a.q);
  check_tensor(op, "dq", a.dq, Shape{T, NH, HD}, a.q);
  check_tensor(op, "dk", a.dk, Shape{T, NKV, HD}, a.q);
  check_tensor(op, "dv", a.dv, Shape{T, NKV, HD}, a.q);
  check_device(op, a);
  if (T == 0) return;
  cpu::attention_backward(a);
}

}  // namespace foundry
