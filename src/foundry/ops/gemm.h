// GEMM: c = alpha * op(a) @ op(b) + beta * c, with op(x) = x or x^T.
//
// Shapes (a leading batch dimension Bt is allowed on all three, then every batch is one GEMM):
//   a: (M, K), or (K, M) when trans_a      dtype f32 or bf16
//   b: (K, N), or (N, K) when trans_b      same dtype as a
//   c: (M, N)                              f32 (bf16 inputs accumulate in f32)
// Leading dimensions: lda/ldb/ldc are row strides in elements of the stored (untransposed)
// matrices; 0 means dense rows (the view's last dimension). With a leading dimension the view's
// shape is the logical matrix shape and its data pointer the first element; batch b starts at
// data + b * rows * ld.
// CPU: oneDNN matmul primitives, cached by (shapes, strides, dtypes, alpha, beta).
#pragma once

#include "foundry/core/tensor.h"

namespace foundry {

struct GemmArgs {
  TensorView a;
  TensorView b;
  TensorView c;
  bool trans_a = false;
  bool trans_b = false;
  float alpha = 1.f;
  float beta = 0.f;
  int64_t lda = 0;
  int64_t ldb = 0;
  int64_t ldc = 0;
};

void gemm(const GemmArgs& args);

}  // namespace foundry

namespace foundry {

// The best GEMM throughput the device reaches, measured now (the roof that MFU is quoted
// against): M = 2048, K = 512, N = 2048 through the backend's GEMM library directly, for about
// `seconds`. dtype f32 or bf16 (bf16 inputs, f32 output).
double gemm_peak_gflops(DType dtype, Device device, double seconds = 0.5);

}  // namespace foundry
