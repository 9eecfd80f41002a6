// Residual add: validates shapes, dtypes and devices, then dispatches on the device.
#include "foundry/ops/elementwise.h"

#include "foundry/backend/cpu/elementwise.h"
#include "foundry/ops/pointwise_checks.h"

namespace foundry {

using detail::check_cpu;
using detail::check_tensor;

void add_forward(const AddArgs& args) {
  constexpr std::string_view op = "add_forward";
  check_tensor(op, "a", args.a, DType::f32);
  check_tensor(op, "b", args.b, DType::f32, args.a.shape);
  check_tensor(op, "out", args.out, DType::f32, args.a.shape);
  check_cpu(op, {args.a, args.b, args.out});
  cpu::add_forward(args);
}

// da += dout, db += dout; either may be empty.
void add_backward(const AddArgs& args) {
  constexpr std::string_view op = "add_backward";
  check_tensor(op, "dout", args.dout, DType::f32);
  if (args.da.defined()) check_tensor(op, "da", args.da, DType::f32, args.dout.shape);
  if (args.db.defined()) check_tensor(op, "db", args.db, DType::f32, args.dout.shape);
  check_cpu(op, {args.dout, args.da, args.db});
  cpu::add_backward(args);
}

}  // namespace foundry
