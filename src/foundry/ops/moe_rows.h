// Row-wise helpers of the MoE experts (Megatron's GroupedMLP with the routing probability
// applied after the activation, "weighted SwiGLU"):
//   row_scale:      y[r, :] = x[r, :] * s[r];  backward dx = dy * s, ds[r] = sum_j dy[r, j] x[r, j]
//   weighted_swiglu: y[r, :] = s[r] * silu(g) * u of h[r] = [g | u] (Megatron's
//                   weighted_bias_swiglu_impl: the experts' SwiGLU and probability scaling in one
//                   pass); backward recomputes a = silu(g) * u: ds[r] = sum_j dy[r, j] a[r, j],
//                   dh = swiglu_backward(h, s[r] * dy)
//   probs_scatter:  the gradient of the expert-major row probabilities back into the (T, E)
//                   routing-probability matrix: dprobs[row_token[r], expert(r)] = drow[r], where
//                   expert(r) is the group of row r given tokens_per_expert; every other entry 0.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct RowScaleArgs {
  TensorView x;   // (N, F) f32
  TensorView s;   // (N) f32
  TensorView y;   // (N, F) f32, forward output (may alias x)
  TensorView dy;  // (N, F) f32
  TensorView dx;  // (N, F) f32, written (=); may alias dy
  TensorView ds;  // (N) f32, written (=)
};
void row_scale_forward(const RowScaleArgs& args);
void row_scale_backward(const RowScaleArgs& args);  // reads x, s, dy; ds first, then dx

struct WeightedSwigluArgs {
  TensorView h;   // (N, 2F) f32: columns [0, F) gate, [F, 2F) up
  TensorView s;   // (N) f32
  TensorView y;   // (N, F) f32, forward output
  TensorView dy;  // (N, F) f32
  TensorView dh;  // (N, 2F) f32, written (=)
  TensorView ds;  // (N) f32, written (=)
};
void weighted_swiglu_forward(const WeightedSwigluArgs& args);
void weighted_swiglu_backward(const WeightedSwigluArgs& args);  // reads h, s, dy

struct ProbsScatterArgs {
  TensorView drow;               // (N) f32
  TensorView row_token;          // (N) i32
  TensorView tokens_per_expert;  // (E) i64, sums to N
  TensorView dprobs;             // (T, E) f32, written (=)
};
void probs_scatter(const ProbsScatterArgs& args);

}  // namespace foundry
