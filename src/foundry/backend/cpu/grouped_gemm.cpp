// CPU grouped GEMM: each non-empty group is one oneDNN matmul through cpu::gemm, which
// parallelises inside the primitive and caches it by shape (a repeated token distribution
// costs one cache lookup per group). Groups are views into a, b and c: no copies.
#include "foundry/backend/cpu/grouped_gemm.h"

#include "foundry/backend/cpu/gemm.h"

namespace foundry::cpu {
namespace {

// Rows [begin, end) of a 2-D view, or matrix g of a 3-D one, as a view (any dtype).
TensorView rows_of(const TensorView& t, int64_t begin, int64_t end) {
  const int64_t cols = t.size(-1);
  return {static_cast<char*>(t.data) + begin * cols * dtype_size(t.dtype), t.dtype,
          Shape{end - begin, cols}, t.device};
}
TensorView matrix_of(const TensorView& t, int64_t g) {
  const int64_t r = t.size(1), cols = t.size(2);
  return {static_cast<char*>(t.data) + g * r * cols * dtype_size(t.dtype), t.dtype, Shape{r, cols},
          t.device};
}

}  // namespace

void grouped_gemm(const GroupedGemmArgs& g) {
  const int64_t E = g.group_sizes.size(0);
  const int64_t* sizes = g.group_sizes.ptr<int64_t>();
  int64_t off = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = sizes[e];
    if (g.weight_grad) {
      // c_g (out, in) = a_g^T (out, n) @ b_g (n, in) + beta c_g; n = 0 scales c_g (cpu::gemm K = 0).
      gemm({.a = rows_of(g.a, off, off + n), .b = rows_of(g.b, off, off + n),
            .c = matrix_of(g.c, e), .trans_a = true, .beta = g.beta});
    } else if (n > 0) {
      gemm({.a = rows_of(g.a, off, off + n), .b = matrix_of(g.b, e), .c = rows_of(g.c, off, off + n),
            .trans_b = g.trans_b, .beta = g.beta});
    }
    off += n;
  }
}

}  // namespace foundry::cpu
