// Grouped GEMM: validates shapes, dtypes, devices, group sizes and aliasing, then dispatches.
#include "foundry/ops/grouped_gemm.h"

#include "foundry/backend/cpu/grouped_gemm.h"
#include "foundry/ops/pointwise_checks.h"

namespace foundry {

namespace {

bool overlap(const TensorView& x, const TensorView& y) {
  const char* xb = static_cast<const char*>(x.data);
  const char* yb = static_cast<const char*>(y.data);
  const char* xe = xb + x.nbytes();
  const char* ye = yb + y.nbytes();
  return xb < xe && yb < ye && xb < ye && yb < xe;
}

}  // namespace

void grouped_gemm(const GroupedGemmArgs& g) {
  constexpr std::string_view op = "grouped_gemm";
  const TensorView &a = g.a, &b = g.b, &c = g.c;
  detail::check_tensor(op, "group_sizes", g.group_sizes, DType::i64);
  FOUNDRY_CHECK(g.group_sizes.ndim() == 1 && g.group_sizes.device.is_cpu(),
                "{}: group_sizes must be 1-D (E) on the host, got {}", op, g.group_sizes.str());
  const int64_t E = g.group_sizes.size(0);
  FOUNDRY_CHECK(a.defined() && b.defined() && c.defined(), "{}: a, b and c are required", op);
  FOUNDRY_CHECK(a.dtype == DType::f32 || a.dtype == DType::bf16,
                "{}: a has dtype {}, expected f32 or bf16", op, dtype_name(a.dtype));
  check_dtype(op, "b", b, a.dtype);
  check_dtype(op, "c", c, DType::f32);
  FOUNDRY_CHECK(a.ndim() == 2, "{}: a must be 2-D (N, K), got shape {}", op, a.shape.str());
  const int64_t N = a.size(0);
  const std::string_view mode = g.weight_grad ? "weight_grad" : (g.trans_b ? "trans_b" : "rows");
  if (g.weight_grad) {
    FOUNDRY_CHECK(b.ndim() == 2 && b.size(0) == N,
                  "{}: [weight_grad] b must be (N, K2) with N = {} (a {}), got shape {}", op, N,
                  a.shape.str(), b.shape.str());
    const Shape want{E, a.size(1), b.size(1)};
    FOUNDRY_CHECK(c.shape == want, "{}: [weight_grad] c has shape {}, expected {} for a {} b {} "
                  "and {} groups", op, c.shape.str(), want.str(), a.shape.str(), b.shape.str(), E);
  } else {
    FOUNDRY_CHECK(b.ndim() == 3 && b.size(0) == E,
                  "{}: [{}] b must be 3-D ({}, ...) with one matrix per group, got shape {}", op,
                  mode, E, b.shape.str());
    const int64_t K = g.trans_b ? b.size(2) : b.size(1);
    const int64_t Nout = g.trans_b ? b.size(1) : b.size(2);
    FOUNDRY_CHECK(K == a.size(1), "{}: [{}] inner dimensions differ: a {} b {}", op, mode,
                  a.shape.str(), b.shape.str());
    const Shape want{N, Nout};
    FOUNDRY_CHECK(c.shape == want, "{}: [{}] c has shape {}, expected {} for a {} b {}", op, mode,
                  c.shape.str(), want.str(), a.shape.str(), b.shape.str());
  }
  const int64_t* sizes = g.group_sizes.ptr<int64_t>();
  int64_t total = 0;
  for (int64_t e = 0; e < E; ++e) {
    FOUNDRY_CHECK(sizes[e] >= 0, "{}: group_sizes[{}] = {} is negative", op, e, sizes[e]);
    total += sizes[e];
  }
  FOUNDRY_CHECK(total == N, "{}: group_sizes sum to {} but a {} has {} rows", op, total,
                a.shape.str(), N);
  FOUNDRY_CHECK(!overlap(c, a) && !overlap(c, b),
                "{}: c {} overlaps an input (a {} b {}); the output must not alias a or b", op,
                c.shape.str(), a.shape.str(), b.shape.str());
  detail::check_cpu(op, {a, b, c});
  cpu::grouped_gemm(g);
}

}  // namespace foundry
