// RoPE: validates shapes, dtypes, devices, the rotated width and the Llama 3 scaling factors, then
// dispatches on the device.
#include "foundry/ops/rope.h"

#include <cmath>

#include "foundry/backend/cpu/rope.h"
#include "foundry/ops/pointwise_checks.h"

namespace foundry {

using detail::check_cpu;
using detail::check_tensor;

namespace {

// in (T, NH, HD) with positions (T), and R = HD * rotary_percent even and in (0, HD].
void check_rope(std::string_view op, const RopeArgs& a, const TensorView& in, std::string_view in_name,
                const TensorView& out, std::string_view out_name) {
  check_tensor(op, in_name, in, DType::f32);
  FOUNDRY_CHECK(in.ndim() == 3, "{}: {} must be 3-D (T, NH, HD), got shape {}", op, in_name,
                in.shape.str());
  check_tensor(op, out_name, out, DType::f32, in.shape);
  check_tensor(op, "positions", a.positions, DType::i32, Shape{in.size(0)});
  FOUNDRY_CHECK(a.theta > 0.f && std::isfinite(a.theta), "{}: theta must be > 0, got {}", op, a.theta);
  const int64_t HD = in.size(2);
  FOUNDRY_CHECK(a.rotary_percent > 0.f && a.rotary_percent <= 1.f,
                "{}: rotary_percent must be in (0, 1], got {}", op, a.rotary_percent);
  const int64_t R = cpu::rope_rotary_dims(HD, a.rotary_percent);
  FOUNDRY_CHECK(R > 0 && R % 2 == 0,
                "{}: rotary_percent {} of head dim HD {} gives R = {} rotated dims; R must be even "
                "and > 0",
                op, a.rotary_percent, HD, R);
  if (a.scaling.enabled) {
    const RopeScaling& sc = a.scaling;
    FOUNDRY_CHECK(sc.factor > 0.f && std::isfinite(sc.factor), "{}: scaling factor must be > 0, got {}", op,
                  sc.factor);
    FOUNDRY_CHECK(sc.low_freq_factor > 0.f && sc.high_freq_factor > sc.low_freq_factor &&
                      std::isfinite(sc.high_freq_factor),
                  "{}: scaling needs 0 < low_freq_factor < high_freq_factor, got {} and {}", op,
                  sc.low_freq_factor, sc.high_freq_factor);
    FOUNDRY_CHECK(sc.original_max_position_embeddings > 0,
                  "{}: scaling original_max_position_embeddings must be > 0, got {}", op,
                  sc.original_max_position_embeddings);
  }
  check_cpu(op, {a.positions, in, out});
}

}  // namespace

// out may alias x.
void rope_forward(const RopeArgs& args) {
  check_rope("rope_forward", args, args.x, "x", args.out, "out");
  cpu::rope_forward(args);
}

// dx written (=); may alias dy.
void rope_backward(const RopeArgs& args) {
  check_rope("rope_backward", args, args.dy, "dy", args.dx, "dx");
  cpu::rope_backward(args);
}

}  // namespace foundry
