// Activations, SwiGLU and softmax: validates shapes, dtypes and devices, then dispatches on
// the device.
#include "foundry/ops/activation.h"

#include "foundry/backend/cpu/activation.h"
#include "foundry/ops/pointwise_checks.h"

namespace foundry {

using detail::check_cpu;
using detail::check_tensor;

namespace {

// (N, C) matrix checks for the row-wise ops.
void check_matrix(std::string_view op, std::string_view what, const TensorView& t) {
  check_tensor(op, what, t, DType::f32);
  FOUNDRY_CHECK(t.ndim() == 2, "{}: {} must be 2-D (N, C), got shape {}", op, what, t.shape.str());
}

}  // namespace

void activation_forward(const ActivationArgs& args) {
  constexpr std::string_view op = "activation_forward";
  check_tensor(op, "x", args.x, DType::f32);
  check_tensor(op, "y", args.y, DType::f32, args.x.shape);
  check_cpu(op, {args.x, args.y});
  cpu::activation_forward(args);
}

// dx = dy * f'(x), written (=).
void activation_backward(const ActivationArgs& args) {
  constexpr std::string_view op = "activation_backward";
  check_tensor(op, "x", args.x, DType::f32);
  check_tensor(op, "dy", args.dy, DType::f32, args.x.shape);
  check_tensor(op, "dx", args.dx, DType::f32, args.x.shape);
  check_cpu(op, {args.x, args.dy, args.dx});
  cpu::activation_backward(args);
}

void swiglu_forward(const SwigluArgs& args) {
  constexpr std::string_view op = "swiglu_forward";
  check_matrix(op, "x", args.x);
  FOUNDRY_CHECK(args.x.size(1) % 2 == 0, "{}: x has shape {}, its last dim must be 2F (gate | up)",
                op, args.x.shape.str());
  check_tensor(op, "y", args.y, DType::f32, Shape{args.x.size(0), args.x.size(1) / 2});
  check_cpu(op, {args.x, args.y});
  cpu::swiglu_forward(args);
}

// dx (N, 2F) written (=).
void swiglu_backward(const SwigluArgs& args) {
  constexpr std::string_view op = "swiglu_backward";
  check_matrix(op, "x", args.x);
  FOUNDRY_CHECK(args.x.size(1) % 2 == 0, "{}: x has shape {}, its last dim must be 2F (gate | up)",
                op, args.x.shape.str());
  check_tensor(op, "dy", args.dy, DType::f32, Shape{args.x.size(0), args.x.size(1) / 2});
  check_tensor(op, "dx", args.dx, DType::f32, args.x.shape);
  check_cpu(op, {args.x, args.dy, args.dx});
  cpu::swiglu_backward(args);
}

void softmax_forward(const SoftmaxArgs& args) {
  constexpr std::string_view op = "softmax_forward";
  check_matrix(op, "x", args.x);
  check_tensor(op, "y", args.y, DType::f32, args.x.shape);
  check_cpu(op, {args.x, args.y});
  cpu::softmax_forward(args);
}

// dx = y (dy - sum(dy y)), written (=).
void softmax_backward(const SoftmaxArgs& args) {
  constexpr std::string_view op = "softmax_backward";
  check_matrix(op, "y", args.y);
  check_tensor(op, "dy", args.dy, DType::f32, args.y.shape);
  check_tensor(op, "dx", args.dx, DType::f32, args.y.shape);
  check_cpu(op, {args.y, args.dy, args.dx});
  cpu::softmax_backward(args);
}

}  // namespace foundry
