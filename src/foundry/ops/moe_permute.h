// MoE token permutation (Megatron-Core moe_utils.permute / unpermute with a routing map).
//
// permute: the rows of x copied into expert-major order, stable: all tokens routed to expert 0
// in token order, then expert 1, ... (Megatron: argsort(map^T.flatten(), stable)). A token
// routed to k experts appears k times. N = the number of ones in routing_map.
//   permuted[r]       = x[row_token[r]]
//   permuted_probs[r] = probs[row_token[r], expert(r)]
//   tokens_per_expert = routing_map.sum(0)  (the grouped GEMM's group sizes)
// Padding (optional; Megatron's fused permute+pad / capacity padding): with pad_multiple = m > 1
// each expert's segment is rounded up to a multiple of m rows; with capacity = C > 0 every
// segment is exactly C rows (an expert with more than C tokens is an error: the router drops
// tokens first). Padding rows follow the expert's real rows: zeros, permuted_probs 0,
// row_token -1; tokens_per_expert then holds the padded segment sizes. Backward and unpermute
// skip padding rows.
// permute backward: dx[t] = sum of dpermuted[r] over the rows r of token t (written, =), added
// in row (= expert) order, so the result does not depend on the thread count; with
// dpermuted_probs given, dprobs[t, e] = dpermuted_probs[row of (t, e)] and 0 where map is 0.
//
// unpermute (combine): out[t] = sum over rows r with row_token[r] = t of y[r] (written, =; no
// weighting: the probs are applied before, on the expert activations). Rows with
// row_token = -1 (padding) contribute nothing. Its backward gathers: dy[r] = dout[row_token[r]]
// (0 for padding rows).
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct MoePermuteArgs {
  TensorView routing_map;        // (T, E) u8: 1 where token t goes to expert e (0 or 1 only)
  TensorView probs;              // (T, E) f32, may be empty
  TensorView x;                  // (T, H) f32
  TensorView permuted;           // (N, H) f32 out, expert-major
  TensorView permuted_probs;     // (N) f32 out, probs[t, e] of each row; empty iff probs empty
  TensorView row_token;          // (N) i32 out: source token of each permuted row
  TensorView tokens_per_expert;  // (E) i64 out
  // backward (needs routing_map and row_token from the forward):
  TensorView dpermuted;          // (N, H) f32
  TensorView dx;                 // (T, H) f32 written: sum of the gradients of a token's copies
  TensorView dpermuted_probs;    // (N) f32, optional
  TensorView dprobs;             // (T, E) f32 written when dpermuted_probs is given
  int64_t pad_multiple = 0;      // 0 or 1: no padding
  int64_t capacity = 0;          // 0: no capacity padding (not both with pad_multiple > 1)
};

// Forward reads routing_map, probs, x; writes permuted, permuted_probs, row_token,
// tokens_per_expert. An N that is not the number of ones in the map is an error.
void moe_permute_forward(const MoePermuteArgs& args);
// Backward reads routing_map, row_token, dpermuted (and dpermuted_probs); writes dx (and dprobs).
void moe_permute_backward(const MoePermuteArgs& args);

// The N to allocate permute's outputs with: the number of ones in a (T, E) u8 routing map, or
// with padding the sum of the padded segment sizes.
int64_t moe_permute_num_rows(const TensorView& routing_map, int64_t pad_multiple = 0,
                             int64_t capacity = 0);

struct MoeUnpermuteArgs {
  TensorView y;          // (N, H) f32
  TensorView row_token;  // (N) i32, each in [0, T) or -1 (padding row)
  TensorView out;        // (T, H) f32 written
  TensorView dout;       // (T, H) f32
  TensorView dy;         // (N, H) f32 written
};

void moe_unpermute_forward(const MoeUnpermuteArgs& args);
void moe_unpermute_backward(const MoeUnpermuteArgs& args);

}  // namespace foundry
