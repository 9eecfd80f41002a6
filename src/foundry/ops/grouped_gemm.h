// Grouped GEMM: all local experts of an MoE layer in one call, over variable token counts
// (Megatron-Core TEGroupedMLP / GroupedLinear with m_splits = tokens_per_expert).
//
// The rows of `a` are grouped by expert (moe_permute's expert-major order): group g is rows
// [off_g, off_g + n_g), off_g = n_0 + ... + n_{g-1}, n_g = group_sizes[g] (host i64).
// Expert weights are stored per expert like nn.Linear, w (E, out, in).
//
// rows mode (weight_grad = false), per group g:
//   c[off_g : off_g + n_g] = a_g @ op(b_g) + beta * c[...]
//   trans_b = true:  b (E, Nout, K), op(b_g) = b_g^T  — the forward y_g = x_g w_g^T
//   trans_b = false: b (E, K, Nout), op(b_g) = b_g    — the data gradient dx_g = dy_g w_g
//   a (N, K), c (N, Nout). Rows of c in no group do not exist (sum n_g = N); a group with
//   n_g = 0 touches nothing.
// weight_grad mode (trans_b is ignored), per group g:
//   c_g = a_g^T b_g + beta * c_g      — dW_g = dy_g^T x_g (beta = 1 accumulates)
//   a = dy (N, out), b = x (N, in), c (E, out, in). A group with n_g = 0 gets c_g = beta c_g
//   (zeros for beta = 0).
// dtypes: a and b f32 or bf16 (the same), c f32 (bf16 accumulates in f32). c must not overlap
// a or b. CPU: groups cut into row (or output-row) blocks, one OpenMP loop over the blocks,
// each a single-threaded oneDNN matmul (primitives cached by shape); see
// backend/cpu/grouped_gemm.cpp.
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct GroupedGemmArgs {
  TensorView a;            // (N, K) rows grouped by expert
  TensorView b;            // (E, Nout, K) with trans_b, (E, K, Nout) without; (N, K2) in weight_grad
  TensorView c;            // (N, Nout) in rows mode, (E, K, K2) in weight_grad mode
  TensorView group_sizes;  // (E) i64 on the host: n_g >= 0, sum = N
  bool trans_b = true;
  bool weight_grad = false;
  float beta = 0.f;
};

void grouped_gemm(const GroupedGemmArgs& args);

}  // namespace foundry
