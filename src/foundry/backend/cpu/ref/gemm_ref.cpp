#include "foundry/backend/cpu/ref/gemm_ref.h"

namespace foundry::ref {

namespace {
double load(const TensorView& t, int64_t i) {
  return t.dtype == DType::bf16 ? bf16_to_f32(static_cast<const uint16_t*>(t.data)[i])
                                : static_cast<const float*>(t.data)[i];
}
}  // namespace

void gemm(const GemmArgs& g) {
  const bool batched = g.c.ndim() == 3;
  const int64_t batch = batched ? g.c.size(0) : 1;
  const int64_t M = g.c.size(-2), N = g.c.size(-1);
  const int64_t K = g.trans_a ? g.a.size(-2) : g.a.size(-1);
  const int64_t lda = g.lda ? g.lda : g.a.size(-1);
  const int64_t ldb = g.ldb ? g.ldb : g.b.size(-1);
  const int64_t ldc = g.ldc ? g.ldc : N;
  const int64_t a_rows = g.a.size(-2), b_rows = g.b.size(-2);
  float* c = g.c.ptr<float>();
  for (int64_t bt = 0; bt < batch; ++bt)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t ia = bt * a_rows * lda + (g.trans_a ? k * lda + m : m * lda + k);
          const int64_t ib = bt * b_rows * ldb + (g.trans_b ? n * ldb + k : k * ldb + n);
          acc += load(g.a, ia) * load(g.b, ib);
        }
        float& out = c[bt * M * ldc + m * ldc + n];
        out = static_cast<float>(g.alpha * acc + (g.beta == 0.f ? 0.0 : g.beta * static_cast<double>(out)));
      }
}

}  // namespace foundry::ref
