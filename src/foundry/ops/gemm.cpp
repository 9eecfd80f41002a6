// gemm: c = alpha * op(a) @ op(b) + beta * c (BLAS GEMM semantics, op(x) = x or x^T).
// Validates shapes, dtypes, devices and leading dimensions, then dispatches on the device.
#include "foundry/ops/gemm.h"

#include <algorithm>

#include "foundry/backend/cpu/gemm.h"

namespace foundry {
namespace {

// "a (3, 5)" or "a (5, 3) [trans_a]": how a matrix appears in error messages.
std::string describe(std::string_view name, const TensorView& t, bool trans) {
  return fmt::format("{} {}{}", name, t.shape.str(), trans ? fmt::format(" [trans_{}]", name) : "");
}

// Leading dimension: 0 means dense rows; otherwise at least the stored row length.
int64_t check_ld(std::string_view name, int64_t ld, const TensorView& t) {
  FOUNDRY_CHECK(ld >= 0, "gemm: ld{} {} is negative ({} {})", name, ld, name, t.shape.str());
  if (ld == 0) return t.size(-1);
  FOUNDRY_CHECK(ld >= t.size(-1), "gemm: ld{} {} is smaller than the row length of {} {}", name,
                ld, name, t.shape.str());
  return ld;
}

// Bytes [begin, end) that a (possibly batched, strided) matrix view touches.
std::pair<const char*, const char*> extent(const TensorView& t, int64_t ld) {
  const char* p = static_cast<const char*>(t.data);
  int64_t rows = 1;  // every dimension but the last (Shape::rows() divides by the last)
  for (int i = 0; i + 1 < t.ndim(); ++i) rows *= t.size(i);
  const int64_t cols = t.size(-1);
  if (rows == 0 || cols == 0) return {p, p};
  return {p, p + ((rows - 1) * ld + cols) * dtype_size(t.dtype)};
}

bool overlap(std::pair<const char*, const char*> x, std::pair<const char*, const char*> y) {
  return x.first < x.second && y.first < y.second && x.first < y.second && y.first < x.second;
}

}  // namespace

void gemm(const GemmArgs& g) {
  const TensorView &a = g.a, &b = g.b, &c = g.c;
  // a (Bt?, M, K) or (Bt?, K, M) with trans_a; b (Bt?, K, N) or (Bt?, N, K); c (Bt?, M, N)
  FOUNDRY_CHECK((a.ndim() == 2 || a.ndim() == 3) && a.ndim() == b.ndim() && b.ndim() == c.ndim(),
                "gemm: a, b and c must all be 2-D, or all 3-D (batched): a {} b {} c {}",
                a.shape.str(), b.shape.str(), c.shape.str());
  FOUNDRY_CHECK(a.dtype == DType::f32 || a.dtype == DType::bf16,
                "gemm: a has dtype {}, expected f32 or bf16", dtype_name(a.dtype));
  check_dtype("gemm", "b", b, a.dtype);
  check_dtype("gemm", "c", c, DType::f32);
  check_same_device("gemm", a, b);
  check_same_device("gemm", a, c);

  const int64_t M = g.trans_a ? a.size(-1) : a.size(-2);
  const int64_t K = g.trans_a ? a.size(-2) : a.size(-1);
  const int64_t Kb = g.trans_b ? b.size(-1) : b.size(-2);
  const int64_t N = g.trans_b ? b.size(-2) : b.size(-1);
  FOUNDRY_CHECK(K == Kb, "gemm: inner dimensions differ: {} {}", describe("a", a, g.trans_a),
                describe("b", b, g.trans_b));
  if (a.ndim() == 3)
    FOUNDRY_CHECK(a.size(0) == b.size(0) && a.size(0) == c.size(0),
                  "gemm: batch sizes differ: a {} b {} c {}", a.shape.str(), b.shape.str(),
                  c.shape.str());
  const Shape c_shape = a.ndim() == 3 ? Shape{a.size(0), M, N} : Shape{M, N};
  FOUNDRY_CHECK(c.shape == c_shape, "gemm: c has shape {}, expected {} for {} {}", c.shape.str(),
                c_shape.str(), describe("a", a, g.trans_a), describe("b", b, g.trans_b));

  const int64_t lda = check_ld("a", g.lda, a);
  const int64_t ldb = check_ld("b", g.ldb, b);
  const int64_t ldc = check_ld("c", g.ldc, c);
  for (const auto& [name, t] : {std::pair{"a", &a}, std::pair{"b", &b}, std::pair{"c", &c}})
    FOUNDRY_CHECK(t->defined() || t->numel() == 0, "gemm: {} {} has no data", name, t->shape.str());
  FOUNDRY_CHECK(!overlap(extent(c, ldc), extent(a, lda)) && !overlap(extent(c, ldc), extent(b, ldb)),
                "gemm: c {} overlaps an input (a {} b {}); the output must not alias a or b",
                c.shape.str(), a.shape.str(), b.shape.str());

  FOUNDRY_CHECK(c.device.is_cpu(), "gemm: device {} is not supported in this build",
                c.device.str());
  cpu::gemm(g);
}

}  // namespace foundry
