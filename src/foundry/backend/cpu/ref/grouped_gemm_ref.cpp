#include "foundry/backend/cpu/ref/grouped_gemm_ref.h"

namespace foundry::ref {

namespace {
double load(const TensorView& t, int64_t i) {
  return t.dtype == DType::bf16 ? bf16_to_f32(static_cast<const uint16_t*>(t.data)[i])
                                : static_cast<const float*>(t.data)[i];
}
float update(float old, double acc, float beta) {
  return static_cast<float>(acc + (beta == 0.f ? 0.0 : beta * static_cast<double>(old)));
}
}  // namespace

void grouped_gemm(const GroupedGemmArgs& g) {
  const int64_t E = g.group_sizes.size(0);
  const int64_t* sizes = g.group_sizes.ptr<int64_t>();
  float* c = g.c.ptr<float>();
  int64_t off = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = sizes[e];
    if (g.weight_grad) {  // c_e[i, j] = sum_r a[off + r, i] b[off + r, j]
      const int64_t I = g.a.size(1), J = g.b.size(1);
      for (int64_t i = 0; i < I; ++i)
        for (int64_t j = 0; j < J; ++j) {
          double acc = 0;
          for (int64_t r = off; r < off + n; ++r) acc += load(g.a, r * I + i) * load(g.b, r * J + j);
          float& out = c[(e * I + i) * J + j];
          out = update(out, acc, g.beta);
        }
    } else {
      const int64_t K = g.a.size(1), Nout = g.c.size(1);
      for (int64_t r = off; r < off + n; ++r)
        for (int64_t j = 0; j < Nout; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k) {
            const int64_t ib = g.trans_b ? (e * Nout + j) * K + k : (e * K + k) * Nout + j;
            acc += load(g.a, r * K + k) * load(g.b, ib);
          }
          float& out = c[r * Nout + j];
          out = update(out, acc, g.beta);
        }
    }
    off += n;
  }
}

}  // namespace foundry::ref
