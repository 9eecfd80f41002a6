// grouped_gemm (ops/grouped_gemm.h) against the naive f64 reference: odd/prime shapes, empty
// groups (including all of them), both rows modes and weight_grad, beta, bf16 inputs, finite
// differences of a grouped Linear (y_g = x_g w_g^T) through its three GEMMs, and bad input.
//
// Tolerance: per element, the forward error bound of an f32 dot product of length L in any order
// plus the beta sum (as in gemm_test.cpp): |c - c_ref| <= (L + 4) u (sum |a||b| + |beta c0|),
// u = 2^-24, with sum |a||b| computed by the reference on |a|, |b|. A wrong row, group or index is off by
// O(|a||b|), far above it.
#include "foundry/ops/grouped_gemm.h"

#include <cmath>
#include <numeric>
#include <vector>

#include "foundry/backend/cpu/ref/grouped_gemm_ref.h"
#include "foundry/core/threads.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::randn;

Tensor sizes_of(const std::vector<int64_t>& s) {
  return Tensor::from<int64_t>({static_cast<int64_t>(s.size())}, s);
}

Tensor abs_of(const Tensor& t) {
  Tensor f = t.dtype() == DType::f32 ? t.clone() : t.to(DType::f32);
  for (int64_t i = 0; i < f.numel(); ++i) f.ptr<float>()[i] = std::abs(f.ptr<float>()[i]);
  return t.dtype() == DType::f32 ? f : f.to(t.dtype());
}

::testing::AssertionResult within_bound(const Tensor& c, const Tensor& c_ref, const Tensor& absprod,
                                        const Tensor& c0, float beta, int64_t L) {
  const double u = std::ldexp(1.0, -24);
  const float *x = c.ptr<float>(), *y = c_ref.ptr<float>(), *p = absprod.ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i) {
    const double old = beta == 0.f ? 0.0 : std::abs(static_cast<double>(beta) * c0.ptr<float>()[i]);
    const double tol = static_cast<double>(L + 4) * u * (p[i] + old) + 1e-30;
    if (!(std::abs(static_cast<double>(x[i]) - y[i]) <= tol))
      return ::testing::AssertionFailure() << "element " << i << ": " << x[i] << " vs " << y[i]
                                           << " (bound " << tol << ")";
  }
  return ::testing::AssertionSuccess();
}

// Runs grouped_gemm and the reference on the same inputs and c (NaN-free c0 for beta != 0).
void check_case(const std::vector<int64_t>& sizes, int64_t K, int64_t Nout, bool trans_b,
                bool weight_grad, float beta, DType dtype, uint64_t seed) {
  const int64_t E = static_cast<int64_t>(sizes.size());
  const int64_t N = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  SCOPED_TRACE(::testing::Message() << "E " << E << " N " << N << " K " << K << " Nout " << Nout
                                    << " trans_b " << trans_b << " weight_grad " << weight_grad
                                    << " beta " << beta << " " << dtype_name(dtype));
  const Tensor gs = sizes_of(sizes);
  Tensor a, b;
  Shape c_shape;
  if (weight_grad) {  // a = dy (N, K), b = x (N, Nout), c (E, K, Nout)
    a = randn({N, K}, seed).to(dtype);
    b = randn({N, Nout}, seed + 1).to(dtype);
    c_shape = {E, K, Nout};
  } else {
    a = randn({N, K}, seed).to(dtype);
    b = randn(trans_b ? Shape{E, Nout, K} : Shape{E, K, Nout}, seed + 1).to(dtype);
    c_shape = {N, Nout};
  }
  const Tensor c0 = beta == 0.f ? testing::nan_filled(c_shape) : randn(c_shape, seed + 2);
  Tensor c = c0.clone(), c_ref = c0.clone();
  const GroupedGemmArgs args{.a = a, .b = b, .c = c, .group_sizes = gs, .trans_b = trans_b,
                             .weight_grad = weight_grad, .beta = beta};
  grouped_gemm(args);
  GroupedGemmArgs r = args;
  r.c = c_ref;
  ref::grouped_gemm(r);
  Tensor absprod = Tensor::zeros(c_shape);
  r.a = abs_of(a);
  r.b = abs_of(b);
  r.c = absprod;
  r.beta = 0.f;
  ref::grouped_gemm(r);
  const int64_t L = weight_grad ? *std::max_element(sizes.begin(), sizes.end()) : K;
  EXPECT_TRUE(within_bound(c, c_ref, absprod, c0, beta, L));
}

TEST(GroupedGemm, MatchesReferenceOnOddShapes) {
  const std::vector<std::vector<int64_t>> distributions = {
      {5}, {0}, {3, 0, 11}, {0, 0, 0}, {1, 17, 0, 2, 37, 0, 5}, {13, 1}};
  const float betas[] = {0.f, 1.f, -0.5f};  // cycled through the cases (each primitive costs ~ms)
  uint64_t seed = 1;
  for (const auto& sizes : distributions)
    for (int64_t K : {1, 13, 67})
      for (int64_t Nout : {1, 5, 31}) {
        check_case(sizes, K, Nout, true, false, betas[seed % 3], DType::f32, seed);
        ++seed;
        check_case(sizes, K, Nout, false, false, betas[seed % 3], DType::f32, seed);
        ++seed;
        check_case(sizes, K, Nout, false, true, betas[seed % 3], DType::f32, seed);
        seed += 2;  // next case starts on another beta
      }
}

// Large enough for the parallel path (items spread over threads, each single-threaded): same
// results, and the caller's thread count is left as it was.
TEST(GroupedGemm, ParallelPath) {
  const int threads = num_threads();
  check_case({301, 0, 67, 1, 129}, 131, 257, true, false, 0.f, DType::f32, 200);
  check_case({301, 0, 67, 1, 129}, 257, 131, false, false, 1.f, DType::f32, 201);
  check_case({301, 0, 67, 1, 129}, 257, 131, false, true, 1.f, DType::f32, 202);
  // Many blocks of the same shape run at once (a race on a shared oneDNN scratchpad showed here).
  for (int rep = 0; rep < 2; ++rep) {
    check_case({640, 3, 0, 513}, 256, 192, true, false, 0.f, DType::bf16, 203);
    check_case({640, 3, 0, 513}, 192, 256, false, false, 0.f, DType::f32, 204);
    check_case({640, 3, 0, 513}, 192, 256, false, true, 0.f, DType::bf16, 205);
  }
  EXPECT_EQ(num_threads(), threads);
}

TEST(GroupedGemm, Bf16Inputs) {
  for (bool wg : {false, true}) {
    check_case({7, 0, 29, 3}, 37, 19, true, wg, 0.f, DType::bf16, 100);
    check_case({7, 0, 29, 3}, 37, 19, false, wg, 1.f, DType::bf16, 101);
  }
}

// An empty group in weight_grad mode: c_g = beta c_g (zeros for beta = 0, overwriting NaN).
TEST(GroupedGemm, EmptyGroupWeightGrad) {
  const Tensor gs = sizes_of({4, 0, 3});
  const Tensor dy = randn({7, 5}, 1), x = randn({7, 3}, 2);
  Tensor c = testing::nan_filled({3, 5, 3});
  grouped_gemm({.a = dy, .b = x, .c = c, .group_sizes = gs, .weight_grad = true});
  for (int64_t i = 15; i < 30; ++i) EXPECT_EQ(c.ptr<float>()[i], 0.f);
  const Tensor c0 = randn({3, 5, 3}, 3);
  Tensor c2 = c0.clone();
  grouped_gemm({.a = dy, .b = x, .c = c2, .group_sizes = gs, .weight_grad = true, .beta = 0.5f});
  for (int64_t i = 15; i < 30; ++i) EXPECT_EQ(c2.ptr<float>()[i], 0.5f * c0.ptr<float>()[i]);
  Tensor c3 = c0.clone();
  grouped_gemm({.a = dy, .b = x, .c = c3, .group_sizes = gs, .weight_grad = true, .beta = 1.f});
  for (int64_t i = 15; i < 30; ++i) EXPECT_EQ(c3.ptr<float>()[i], c0.ptr<float>()[i]);
}

// A grouped Linear y_g = x_g w_g^T with loss sum(y * w_out): dx through the rows mode without
// trans_b, dw through weight_grad, both against central finite differences.
TEST(GroupedGemm, FiniteDifferencesOfGroupedLinear) {
  const Tensor gs = sizes_of({3, 0, 5, 1});
  const int64_t N = 9, in = 7, out = 6, E = 4;
  const Tensor x = randn({N, in}, 1), w = randn({E, out, in}, 2), wo = randn({N, out}, 3);
  Tensor y = Tensor::empty({N, out});
  auto loss = [&] {
    grouped_gemm({.a = x, .b = w, .c = y, .group_sizes = gs});
    return testing::dot(y, wo);
  };
  Tensor dx = Tensor::empty({N, in}), dw = testing::nan_filled({E, out, in});
  grouped_gemm({.a = wo, .b = w, .c = dx, .group_sizes = gs, .trans_b = false});
  grouped_gemm({.a = wo, .b = x, .c = dw, .group_sizes = gs, .weight_grad = true});
  EXPECT_TRUE(testing::finite_difference_check(loss, x, dx, 1e-2, 2e-2, 2e-3, 63));
  EXPECT_TRUE(testing::finite_difference_check(loss, w, dw, 1e-2, 2e-2, 2e-3, 168));
}

TEST(GroupedGemm, BadInput) {
  const Tensor gs = sizes_of({2, 3});
  const Tensor a = randn({5, 4}, 1), w = randn({2, 6, 4}, 2);
  Tensor c = Tensor::empty({5, 6});
  grouped_gemm({.a = a, .b = w, .c = c, .group_sizes = gs});  // fine
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = w, .c = c, .group_sizes = sizes_of({2, 2})}),
                        "grouped_gemm", "sum to 4", "(5, 4)");
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = w, .c = c, .group_sizes = sizes_of({6, -1})}),
                        "group_sizes[1] = -1");
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = w, .c = c, .group_sizes = sizes_of({2, 3, 0})}),
                        "b must be 3-D (3, ...)", "(2, 6, 4)");
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = w, .c = c, .group_sizes = gs, .trans_b = false}),
                        "inner dimensions differ", "(5, 4)", "(2, 6, 4)");
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = w, .c = Tensor::empty({5, 7}), .group_sizes = gs}),
                        "c has shape (5, 7)", "expected (5, 6)");
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = w.to(DType::bf16), .c = c, .group_sizes = gs}),
                        "b has dtype bf16");
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = w, .c = c,
                                      .group_sizes = Tensor::from<int32_t>({2}, std::vector<int32_t>{2, 3})}),
                        "group_sizes", "i64");
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = randn({5, 3}, 3), .c = Tensor::empty({2, 4, 4}),
                                      .group_sizes = gs, .weight_grad = true}),
                        "[weight_grad] c has shape (2, 4, 4)", "expected (2, 4, 3)");
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = a, .b = randn({4, 3}, 3), .c = Tensor::empty({2, 4, 3}),
                                      .group_sizes = gs, .weight_grad = true}),
                        "[weight_grad] b must be (N, K2)", "(4, 3)");
  const Tensor big = randn({5, 6}, 4);
  EXPECT_ERROR_MENTIONS(grouped_gemm({.a = big.reshape({5, 6}).slice(0, 5).reshape({5, 6}),
                                      .b = randn({2, 6, 6}, 5), .c = big, .group_sizes = gs}),
                        "overlaps an input");
}

}  // namespace
}  // namespace foundry
