// MoE permute / unpermute: validates shapes, dtypes and devices, then dispatches on the device.
// Values (map entries, N against the map, row_token range) are checked by the backend.
#include "foundry/ops/moe_permute.h"

#include "foundry/backend/cpu/moe_permute.h"
#include "foundry/ops/pointwise_checks.h"

namespace foundry {

using detail::check_cpu;
using detail::check_tensor;

namespace {

void check_map(std::string_view op, const TensorView& map) {
  check_tensor(op, "routing_map", map, DType::u8);
  FOUNDRY_CHECK(map.ndim() == 2, "{}: routing_map must be 2-D (T, E), got shape {}", op,
                map.shape.str());
}

void check_rows(std::string_view op, std::string_view what, const TensorView& t, int64_t H) {
  check_tensor(op, what, t, DType::f32);
  FOUNDRY_CHECK(t.ndim() == 2 && t.size(1) == H, "{}: {} must be (N, {}), got shape {}", op, what,
                H, t.shape.str());
}

void check_padding(std::string_view op, int64_t pad_multiple, int64_t capacity) {
  FOUNDRY_CHECK(pad_multiple >= 0 && capacity >= 0,
                "{}: pad_multiple {} and capacity {} must not be negative", op, pad_multiple,
                capacity);
  FOUNDRY_CHECK(pad_multiple <= 1 || capacity == 0,
                "{}: pad_multiple {} and capacity {} are exclusive", op, pad_multiple, capacity);
}

}  // namespace

int64_t moe_permute_num_rows(const TensorView& routing_map, int64_t pad_multiple, int64_t capacity) {
  check_map("moe_permute_num_rows", routing_map);
  check_padding("moe_permute_num_rows", pad_multiple, capacity);
  check_cpu("moe_permute_num_rows", {routing_map});
  return cpu::moe_permute_num_rows(routing_map, pad_multiple, capacity);
}

void moe_permute_forward(const MoePermuteArgs& a) {
  constexpr std::string_view op = "moe_permute_forward";
  check_map(op, a.routing_map);
  check_padding(op, a.pad_multiple, a.capacity);
  const int64_t T = a.routing_map.size(0), E = a.routing_map.size(1);
  check_tensor(op, "x", a.x, DType::f32);
  FOUNDRY_CHECK(a.x.ndim() == 2 && a.x.size(0) == T,
                "{}: x must be (T, H) with T = {} (routing_map {}), got shape {}", op, T,
                a.routing_map.shape.str(), a.x.shape.str());
  const int64_t H = a.x.size(1);
  check_rows(op, "permuted", a.permuted, H);
  const int64_t N = a.permuted.size(0);
  check_tensor(op, "row_token", a.row_token, DType::i32, Shape{N});
  check_tensor(op, "tokens_per_expert", a.tokens_per_expert, DType::i64, Shape{E});
  if (a.probs.defined()) {
    check_tensor(op, "probs", a.probs, DType::f32, Shape{T, E});
    check_tensor(op, "permuted_probs", a.permuted_probs, DType::f32, Shape{N});
  } else {
    FOUNDRY_CHECK(!a.permuted_probs.defined(),
                  "{}: permuted_probs {} given without probs", op, a.permuted_probs.shape.str());
  }
  check_cpu(op, {a.routing_map, a.probs, a.x, a.permuted, a.permuted_probs, a.row_token,
                 a.tokens_per_expert});
  cpu::moe_permute_forward(a);
}

void moe_permute_backward(const MoePermuteArgs& a) {
  constexpr std::string_view op = "moe_permute_backward";
  check_map(op, a.routing_map);
  check_padding(op, a.pad_multiple, a.capacity);
  const int64_t T = a.routing_map.size(0), E = a.routing_map.size(1);
  check_tensor(op, "dpermuted", a.dpermuted, DType::f32);
  FOUNDRY_CHECK(a.dpermuted.ndim() == 2, "{}: dpermuted must be 2-D (N, H), got shape {}", op,
                a.dpermuted.shape.str());
  const int64_t N = a.dpermuted.size(0), H = a.dpermuted.size(1);
  check_tensor(op, "row_token", a.row_token, DType::i32, Shape{N});
  check_tensor(op, "dx", a.dx, DType::f32, Shape{T, H});
  if (a.dpermuted_probs.defined()) {
    check_tensor(op, "dpermuted_probs", a.dpermuted_probs, DType::f32, Shape{N});
    check_tensor(op, "dprobs", a.dprobs, DType::f32, Shape{T, E});
  } else {
    FOUNDRY_CHECK(!a.dprobs.defined(), "{}: dprobs {} requested without dpermuted_probs", op,
                  a.dprobs.shape.str());
  }
  check_cpu(op, {a.routing_map, a.row_token, a.dpermuted, a.dx, a.dpermuted_probs, a.dprobs});
  cpu::moe_permute_backward(a);
}

void moe_unpermute_forward(const MoeUnpermuteArgs& a) {
  constexpr std::string_view op = "moe_unpermute_forward";
  check_tensor(op, "out", a.out, DType::f32);
  FOUNDRY_CHECK(a.out.ndim() == 2, "{}: out must be 2-D (T, H), got shape {}", op, a.out.shape.str());
  check_rows(op, "y", a.y, a.out.size(1));
  check_tensor(op, "row_token", a.row_token, DType::i32, Shape{a.y.size(0)});
  check_cpu(op, {a.y, a.row_token, a.out});
  cpu::moe_unpermute_forward(a);
}

void moe_unpermute_backward(const MoeUnpermuteArgs& a) {
  constexpr std::string_view op = "moe_unpermute_backward";
  check_tensor(op, "dout", a.dout, DType::f32);
  FOUNDRY_CHECK(a.dout.ndim() == 2, "{}: dout must be 2-D (T, H), got shape {}", op,
                a.dout.shape.str());
  check_rows(op, "dy", a.dy, a.dout.size(1));
  check_tensor(op, "row_token", a.row_token, DType::i32, Shape{a.dy.size(0)});
  check_cpu(op, {a.dout, a.row_token, a.dy});
  cpu::moe_unpermute_backward(a);
}

}  // namespace foundry
