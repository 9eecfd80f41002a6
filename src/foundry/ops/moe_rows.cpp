#include "foundry/ops/moe_rows.h"

#include "foundry/backend/cpu/moe_rows.h"

namespace foundry {

namespace {
void check_cpu(std::string_view op, std::initializer_list<TensorView> ts) {
  for (const TensorView& t : ts)
    FOUNDRY_CHECK(!t.defined() || t.device.is_cpu(), "{}: {} tensors are not supported in this build", op,
                  t.device.str());
}
void check_row_scale(std::string_view op, const RowScaleArgs& a) {
  FOUNDRY_CHECK(a.x.ndim() == 2, "{}: x has shape {}, expected (N, F)", op, a.x.shape.str());
  check_dtype(op, "x", a.x, DType::f32);
  check_shape(op, "s", a.s, {a.x.size(0)});
  check_dtype(op, "s", a.s, DType::f32);
}
}  // namespace

void row_scale_forward(const RowScaleArgs& a) {
  constexpr std::string_view op = "row_scale_forward";
  check_row_scale(op, a);
  check_shape(op, "y", a.y, a.x.shape);
  check_dtype(op, "y", a.y, DType::f32);
  check_cpu(op, {a.x, a.s, a.y});
  cpu::row_scale_forward(a);
}

void row_scale_backward(const RowScaleArgs& a) {
  constexpr std::string_view op = "row_scale_backward";
  check_row_scale(op, a);
  check_shape(op, "dy", a.dy, a.x.shape);
  check_shape(op, "dx", a.dx, a.x.shape);
  check_shape(op, "ds", a.ds, {a.x.size(0)});
  for (const TensorView* t : {&a.dy, &a.dx, &a.ds}) check_dtype(op, "gradient", *t, DType::f32);
  check_cpu(op, {a.x, a.s, a.dy, a.dx, a.ds});
  cpu::row_scale_backward(a);
}

namespace {
void check_weighted_swiglu(std::string_view op, const WeightedSwigluArgs& a, const TensorView& rows_f) {
  FOUNDRY_CHECK(a.h.ndim() == 2 && a.h.size(1) % 2 == 0, "{}: h has shape {}, expected (N, 2F)", op,
                a.h.shape.str());
  const int64_t N = a.h.size(0), F = a.h.size(1) / 2;
  check_dtype(op, "h", a.h, DType::f32);
  check_shape(op, "s", a.s, {N});
  check_dtype(op, "s", a.s, DType::f32);
  check_shape(op, a.y.defined() ? "y" : "dy", rows_f, {N, F});
  check_dtype(op, a.y.defined() ? "y" : "dy", rows_f, DType::f32);
}
}  // namespace

void weighted_swiglu_forward(const WeightedSwigluArgs& a) {
  constexpr std::string_view op = "weighted_swiglu_forward";
  check_weighted_swiglu(op, a, a.y);
  check_cpu(op, {a.h, a.s, a.y});
  cpu::weighted_swiglu_forward(a);
}

void weighted_swiglu_backward(const WeightedSwigluArgs& a) {
  constexpr std::string_view op = "weighted_swiglu_backward";
  FOUNDRY_CHECK(!a.y.defined(), "{}: y must not be given (backward reads h, s, dy)", op);
  check_weighted_swiglu(op, a, a.dy);
  check_shape(op, "dh", a.dh, a.h.shape);
  check_dtype(op, "dh", a.dh, DType::f32);
  check_shape(op, "ds", a.ds, {a.h.size(0)});
  check_dtype(op, "ds", a.ds, DType::f32);
  check_cpu(op, {a.h, a.s, a.dy, a.dh, a.ds});
  cpu::weighted_swiglu_backward(a);
}

void probs_scatter(const ProbsScatterArgs& a) {
  constexpr std::string_view op = "probs_scatter";
  FOUNDRY_CHECK(a.dprobs.ndim() == 2, "{}: dprobs has shape {}, expected (T, E)", op, a.dprobs.shape.str());
  const int64_t T = a.dprobs.size(0), E = a.dprobs.size(1), N = a.drow.numel();
  check_shape(op, "drow", a.drow, {N});
  check_shape(op, "row_token", a.row_token, {N});
  check_shape(op, "tokens_per_expert", a.tokens_per_expert, {E});
  check_dtype(op, "drow", a.drow, DType::f32);
  check_dtype(op, "row_token", a.row_token, DType::i32);
  check_dtype(op, "tokens_per_expert", a.tokens_per_expert, DType::i64);
  check_dtype(op, "dprobs", a.dprobs, DType::f32);
  check_cpu(op, {a.drow, a.row_token, a.tokens_per_expert, a.dprobs});
  int64_t total = 0;
  for (int64_t e = 0; e < E; ++e) total += a.tokens_per_expert.ptr<int64_t>()[e];
  FOUNDRY_CHECK(total == N, "{}: tokens_per_expert sums to {}, but there are {} rows", op, total, N);
  for (int64_t r = 0; r < N; ++r) {
    const int32_t t = a.row_token.ptr<int32_t>()[r];
    FOUNDRY_CHECK(t >= 0 && t < T, "{}: row {} names token {} outside [0, {})", op, r, t, T);
  }
  cpu::probs_scatter(a);
}

}  // namespace foundry
