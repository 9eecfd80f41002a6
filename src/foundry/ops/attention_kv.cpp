// Attention with a key/value cache (decoding): argument validation and device dispatch.
// Contract in ops/attention.h (AttentionKvArgs, after FlashAttention's flash_attn_with_kvcache);
// the CPU kernel is backend/cpu/attention_kv.cpp.
#include <cmath>

#include "foundry/backend/cpu/attention_kv.h"
#include "foundry/ops/attention.h"

namespace foundry {

namespace {

constexpr int64_t kMaxHeadDim = 256;

void check_4d(std::string_view op, std::string_view what, const TensorView& t, std::string_view dims) {
  FOUNDRY_CHECK(t.defined(), "{}: {} is required (f32 {})", op, what, dims);
  check_dtype(op, what, t, DType::f32);
  FOUNDRY_CHECK(t.ndim() == 4, "{}: {} must be {}, got {}", op, what, dims, t.shape.str());
}

}  // namespace

void attention_kv_forward(const AttentionKvArgs& a) {
  constexpr std::string_view op = "attention_kv_forward";
  check_4d(op, "q", a.q, "(B, Tq, NH, HD)");
  check_4d(op, "k_cache", a.k_cache, "(B, Smax, NKV, HD)");
  const int64_t B = a.q.size(0), Tq = a.q.size(1), NH = a.q.size(2), HD = a.q.size(3);
  const int64_t Smax = a.k_cache.size(1), NKV = a.k_cache.size(2);
  FOUNDRY_CHECK(HD >= 1 && HD <= kMaxHeadDim, "{}: head dim HD = {} (q {}) must be in [1, {}]", op,
                HD, a.q.shape.str(), kMaxHeadDim);
  FOUNDRY_CHECK(NH >= 1 && NKV >= 1 && NH % NKV == 0,
                "{}: query heads NH = {} must be a multiple of kv heads NKV = {} (q {}, k_cache {})",
                op, NH, NKV, a.q.shape.str(), a.k_cache.shape.str());
  check_shape(op, "k_cache", a.k_cache, Shape{B, Smax, NKV, HD});
  check_4d(op, "v_cache", a.v_cache, "(B, Smax, NKV, HD)");
  check_shape(op, "v_cache", a.v_cache, Shape{B, Smax, NKV, HD});
  FOUNDRY_CHECK(a.k_new.defined() == a.v_new.defined(),
                "{}: k_new and v_new must be given together (k_new {}, v_new {})", op,
                a.k_new.defined() ? "given" : "empty", a.v_new.defined() ? "given" : "empty");
  if (a.k_new.defined()) {
    check_4d(op, "k_new", a.k_new, "(B, Tq, NKV, HD)");
    check_shape(op, "k_new", a.k_new, Shape{B, Tq, NKV, HD});
    check_4d(op, "v_new", a.v_new, "(B, Tq, NKV, HD)");
    check_shape(op, "v_new", a.v_new, Shape{B, Tq, NKV, HD});
  }
  FOUNDRY_CHECK(a.past_len >= 0, "{}: past_len = {} must be >= 0", op, a.past_len);
  FOUNDRY_CHECK(a.past_len + Tq <= Smax,
                "{}: past_len {} + Tq {} new tokens exceed the cache length Smax = {} (k_cache {})",
                op, a.past_len, Tq, Smax, a.k_cache.shape.str());
  FOUNDRY_CHECK(std::isfinite(a.scale), "{}: scale {} is not finite", op, a.scale);
  check_4d(op, "out", a.out, "(B, Tq, NH, HD)");
  check_shape(op, "out", a.out, Shape{B, Tq, NH, HD});
  for (const TensorView* t : {&a.k_cache, &a.v_cache, &a.k_new, &a.v_new, &a.out})
    if (t->defined()) check_same_device(op, a.q, *t);
  FOUNDRY_CHECK(a.q.device.is_cpu(), "{}: device {} is not supported in this build", op,
                a.q.device.str());
  if (B == 0 || Tq == 0) return;
  cpu::attention_kv_forward(a);
}

}  // namespace foundry
