// Residual add and bias add: validates shapes, dtypes and devices, then dispatches on the device.
#include "foundry/ops/elementwise.h"

#include "foundry/backend/cpu/elementwise.h"
#include "foundry/ops/pointwise_checks.h"
#ifdef FOUNDRY_HAVE_CUDA
#include "foundry/backend/cuda/elementwise.h"
#endif

namespace foundry {

using detail::check_cpu;
using detail::check_tensor;
using detail::common_device;

void add_forward(const AddArgs& args) {
  constexpr std::string_view op = "add_forward";
  check_tensor(op, "a", args.a, DType::f32);
  check_tensor(op, "b", args.b, DType::f32, args.a.shape);
  check_tensor(op, "out", args.out, DType::f32, args.a.shape);
  const Device device = common_device(op, {args.a, args.b, args.out});
  if (device.is_cpu()) return cpu::add_forward(args);
#ifdef FOUNDRY_HAVE_CUDA
  detail::check_cuda_present(op, device);
  return cuda::add_forward(args);
#else
  detail::fail_unsupported(op, device);
#endif
}

// da += dout, db += dout; either may be empty.
void add_backward(const AddArgs& args) {
  constexpr std::string_view op = "add_backward";
  check_tensor(op, "dout", args.dout, DType::f32);
  if (args.da.defined()) check_tensor(op, "da", args.da, DType::f32, args.dout.shape);
  if (args.db.defined()) check_tensor(op, "db", args.db, DType::f32, args.dout.shape);
  const Device device = common_device(op, {args.dout, args.da, args.db});
  if (device.is_cpu()) return cpu::add_backward(args);
#ifdef FOUNDRY_HAVE_CUDA
  detail::check_cuda_present(op, device);
  return cuda::add_backward(args);
#else
  detail::fail_unsupported(op, device);
#endif
}

// out (N, C) = x + bias (C) on every row; out may alias x. CPU only.
void bias_add_forward(const BiasAddArgs& args) {
  constexpr std::string_view op = "bias_add_forward";
  check_tensor(op, "x", args.x, DType::f32);
  FOUNDRY_CHECK(args.x.ndim() == 2, "{}: x must be 2-D (N, C), got shape {}", op, args.x.shape.str());
  check_tensor(op, "bias", args.bias, DType::f32, Shape{args.x.size(1)});
  check_tensor(op, "out", args.out, DType::f32, args.x.shape);
  check_cpu(op, {args.x, args.bias, args.out});
  cpu::bias_add_forward(args);
}

// dbias (C) += column sums of dout (N, C). CPU only.
void bias_add_backward(const BiasAddArgs& args) {
  constexpr std::string_view op = "bias_add_backward";
  check_tensor(op, "dout", args.dout, DType::f32);
  FOUNDRY_CHECK(args.dout.ndim() == 2, "{}: dout must be 2-D (N, C), got shape {}", op, args.dout.shape.str());
  check_tensor(op, "dbias", args.dbias, DType::f32, Shape{args.dout.size(1)});
  check_cpu(op, {args.dout, args.dbias});
  cpu::bias_add_backward(args);
}

}  // namespace foundry
