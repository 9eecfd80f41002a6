#include "foundry/ops/layout.h"

#include "foundry/backend/cpu/layout.h"

namespace foundry {

namespace {
void check(const QkvSplitArgs& a) {
  const char* op = "qkv_split";
  FOUNDRY_CHECK(a.num_heads > 0 && a.num_kv_heads > 0 && a.num_heads % a.num_kv_heads == 0,
                "{}: num_heads {} is not a multiple of num_kv_heads {}", op, a.num_heads, a.num_kv_heads);
  FOUNDRY_CHECK(a.q.ndim() == 3, "{}: q has shape {}, expected (T, NH, HD)", op, a.q.shape.str());
  const int64_t T = a.q.size(0), HD = a.q.size(2);
  check_shape(op, "q", a.q, {T, a.num_heads, HD});
  check_shape(op, "k", a.k, {T, a.num_kv_heads, HD});
  check_shape(op, "v", a.v, {T, a.num_kv_heads, HD});
  check_shape(op, "qkv", a.qkv, {T, (a.num_heads + 2 * a.num_kv_heads) * HD});
  for (const TensorView* t : {&a.qkv, &a.q, &a.k, &a.v}) {
    check_dtype(op, "tensor", *t, DType::f32);
    FOUNDRY_CHECK(t->device.is_cpu(), "{}: device {} not supported in this build", op, t->device.str());
  }
}
}  // namespace

void qkv_split_forward(const QkvSplitArgs& args) {
  check(args);
  cpu::qkv_split_forward(args);
}

void qkv_split_backward(const QkvSplitArgs& args) {
  check(args);
  cpu::qkv_split_backward(args);
}

}  // namespace foundry
