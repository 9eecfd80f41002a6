// gemm (ops/gemm.h) against the naive f64 reference (backend/cpu/ref/gemm_ref.h): odd and prime
// shapes, every transpose combination, batches, leading dimensions with guard values, alpha/beta,
// bf16 inputs, the primitive cache, and bad input.
//
// Tolerance: the classic forward error bound for a dot product of length K summed in f32 in any
// order (Higham, "Accuracy and Stability of Numerical Algorithms", eq. 3.5):
//   |fl(c) - c| <= gamma_K * sum_k |a_mk| |b_kn|,   gamma_K ~ K u,  u = 2^-24,
// plus a few roundings for alpha, the beta sum and the reference's own rounding to f32. bf16
// inputs are compared on the same bf16 values: their products are exact in f32, so the same
// bound applies to f32 accumulation. A wrong element or index is off by O(|a||b|), far above it.
#include "foundry/ops/gemm.h"

#include <cmath>
#include <limits>
#include <thread>

#include "foundry/backend/cpu/gemm.h"
#include "foundry/backend/cpu/ref/gemm_ref.h"
#include "foundry/core/threads.h"
#include "testing.h"

namespace foundry {
namespace {

constexpr float kGuard = 7777.f;  // written into c's padding columns; must survive
const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Case {
  int64_t batch = 0;  // 0: 2-D views; otherwise 3-D views with this leading batch dimension
  int64_t M = 1, N = 1, K = 1;
  bool trans_a = false, trans_b = false;
  float alpha = 1.f, beta = 0.f;
  int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // ld = row length + pad (0: ld left as 0, dense)
  DType dtype = DType::f32;
};

std::string describe(const Case& c) {
  return fmt::format("batch {} M {} N {} K {} trans_a {} trans_b {} alpha {} beta {} pads ({}, {}, {}) {}",
                     c.batch, c.M, c.N, c.K, c.trans_a, c.trans_b, c.alpha, c.beta, c.pad_a,
                     c.pad_b, c.pad_c, dtype_name(c.dtype));
}

// A stored (untransposed) matrix of `rows` x `cols` per batch, in storage (batch * rows, ld).
struct Stored {
  Tensor storage;
  int64_t ld = 0;      // row stride of the storage
  int64_t ld_arg = 0;  // what goes into GemmArgs (0 when dense)
  TensorView view;     // logical shape, first element
};

Shape matrix_shape(int64_t batch, int64_t rows, int64_t cols) {
  return batch ? Shape{batch, rows, cols} : Shape{rows, cols};
}

// Random N(0, 1) entries; padding columns hold `pad_value`.
Stored make_matrix(int64_t batch, int64_t rows, int64_t cols, int64_t pad, float pad_value,
                   DType dtype, uint64_t seed) {
  const int64_t ld = cols + pad, total_rows = std::max<int64_t>(batch, 1) * rows;
  Tensor t = testing::randn({total_rows, ld}, seed);
  float* p = t.ptr<float>();
  for (int64_t r = 0; r < total_rows; ++r)
    for (int64_t j = cols; j < ld; ++j) p[r * ld + j] = pad_value;
  if (dtype != DType::f32) t = t.to(dtype);
  return {t, ld, pad ? ld : 0, TensorView{t.data(), dtype, matrix_shape(batch, rows, cols), Device::cpu()}};
}

Stored abs_copy(const Stored& s) {
  Tensor t = s.storage.to(DType::f32);
  float* p = t.ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = std::abs(p[i]);
  return {t, s.ld, s.ld_arg, TensorView{t.data(), DType::f32, s.view.shape, Device::cpu()}};
}

Stored clone(const Stored& s) {
  Tensor t = s.storage.clone();
  return {t, s.ld, s.ld_arg, TensorView{t.data(), s.view.dtype, s.view.shape, Device::cpu()}};
}

// Runs foundry::gemm and ref::gemm on the same inputs and checks every element against the
// error bound, the padding columns of c for the guard value, and (beta == 0) that c's old
// contents (NaN) are not read.
void check_case(const Case& cs, uint64_t seed = 1) {
  SCOPED_TRACE(describe(cs));
  const int64_t a_rows = cs.trans_a ? cs.K : cs.M, a_cols = cs.trans_a ? cs.M : cs.K;
  const int64_t b_rows = cs.trans_b ? cs.N : cs.K, b_cols = cs.trans_b ? cs.K : cs.N;
  const Stored a = make_matrix(cs.batch, a_rows, a_cols, cs.pad_a, kNaN, cs.dtype, seed);
  const Stored b = make_matrix(cs.batch, b_rows, b_cols, cs.pad_b, kNaN, cs.dtype, seed + 1);
  const Stored c0 = make_matrix(cs.batch, cs.M, cs.N, cs.pad_c, kGuard, DType::f32, seed + 2);
  if (cs.beta == 0.f) {  // beta == 0 must not read c: fill it with NaN
    float* p = c0.storage.ptr<float>();
    for (int64_t r = 0; r < c0.storage.size(0); ++r)
      for (int64_t j = 0; j < cs.N; ++j) p[r * c0.ld + j] = kNaN;
  }
  const Stored c = clone(c0), c_ref = clone(c0);
  auto args = [&](const TensorView& av, const TensorView& bv, const TensorView& cv) {
    return GemmArgs{.a = av, .b = bv, .c = cv, .trans_a = cs.trans_a, .trans_b = cs.trans_b,
                    .alpha = cs.alpha, .beta = cs.beta, .lda = a.ld_arg, .ldb = b.ld_arg,
                    .ldc = c0.ld_arg};
  };
  gemm(args(a.view, b.view, c.view));
  ref::gemm(args(a.view, b.view, c_ref.view));

  // mag = |alpha| * |op(a)| @ |op(b)|: the scale of the rounding error of each element.
  const Stored aa = abs_copy(a), ab = abs_copy(b), mag = clone(c0);
  GemmArgs mag_args = args(aa.view, ab.view, mag.view);
  mag_args.alpha = std::abs(cs.alpha);
  mag_args.beta = 0.f;
  ref::gemm(mag_args);

  const double u = std::ldexp(1.0, -24);
  const float *pc = c.storage.ptr<float>(), *pr = c_ref.storage.ptr<float>();
  const float *pm = mag.storage.ptr<float>(), *p0 = c0.storage.ptr<float>();
  int failures = 0;
  for (int64_t r = 0; r < c.storage.size(0) && failures < 5; ++r)
    for (int64_t j = 0; j < c.ld && failures < 5; ++j) {
      const int64_t i = r * c.ld + j;
      if (j >= cs.N) {  // padding: bit-for-bit untouched
        if (f32_bits(pc[i]) != f32_bits(kGuard)) {
          ADD_FAILURE() << "padding of c written at row " << r << " column " << j << ": " << pc[i];
          ++failures;
        }
        continue;
      }
      const double old = cs.beta == 0.f ? 0.0 : std::abs(static_cast<double>(cs.beta) * p0[i]);
      const double bound = (cs.K + 4) * u * (pm[i] + old) + 1e-30;
      const double err = std::abs(static_cast<double>(pc[i]) - pr[i]);
      if (!(err <= bound)) {
        ADD_FAILURE() << "c row " << r << " column " << j << ": " << pc[i] << " vs reference "
                      << pr[i] << " (error " << err << ", bound " << bound << ")";
        ++failures;
      }
    }
}

constexpr int64_t kSizes[] = {1, 3, 7, 13, 61, 127, 129, 257};

TEST(Gemm, MatchesReferenceOnOddAndPrimeShapes) {
  // For each transpose combination, a Latin square over kSizes: every (M, N), (M, K) and (N, K)
  // pair of sizes appears once (64 GEMMs), and the square shifts with the combination so the
  // four together cover 256 distinct (M, N, K) triples.
  constexpr int n = std::size(kSizes);
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        check_case({.M = kSizes[i], .N = kSizes[j], .K = kSizes[(i + j + 2 * t) % n],
                    .trans_a = (t & 1) != 0, .trans_b = (t & 2) != 0},
                   static_cast<uint64_t>(t * n * n + i * n + j));
}

TEST(Gemm, AllTransposeCombinations) {
  for (int t = 0; t < 4; ++t)
    for (auto [M, N, K] : {std::array<int64_t, 3>{13, 61, 127}, {129, 7, 257}, {1, 257, 3}, {257, 1, 1}})
      check_case({.M = M, .N = N, .K = K, .trans_a = (t & 1) != 0, .trans_b = (t & 2) != 0});
}

TEST(Gemm, Batched) {
  for (int t = 0; t < 4; ++t) {
    check_case({.batch = 3, .M = 61, .N = 13, .K = 127, .trans_a = (t & 1) != 0, .trans_b = (t & 2) != 0});
    check_case({.batch = 1, .M = 7, .N = 129, .K = 3, .trans_a = (t & 1) != 0, .trans_b = (t & 2) != 0});
  }
}

TEST(Gemm, LeadingDimensionsLeavePaddingUntouched) {
  for (int t = 0; t < 4; ++t)
    for (int64_t batch : {0, 3}) {
      const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
      check_case({.batch = batch, .M = 13, .N = 61, .K = 37, .trans_a = ta, .trans_b = tb,
                  .pad_a = 3, .pad_b = 5, .pad_c = 2});
      check_case({.batch = batch, .M = 127, .N = 7, .K = 129, .trans_a = ta, .trans_b = tb,
                  .pad_c = 9});
      check_case({.batch = batch, .M = 3, .N = 129, .K = 61, .trans_a = ta, .trans_b = tb,
                  .pad_a = 1});
      check_case({.batch = batch, .M = 61, .N = 3, .K = 7, .trans_a = ta, .trans_b = tb,
                  .beta = 1.f, .pad_b = 16});
    }
}

TEST(Gemm, AlphaBeta) {
  for (float alpha : {1.f, -0.5f, 2.5f, 0.f})
    for (float beta : {0.f, 1.f, -1.5f})
      for (int t = 0; t < 4; ++t)
        check_case({.M = 61, .N = 37, .K = 13, .trans_a = (t & 1) != 0, .trans_b = (t & 2) != 0,
                    .alpha = alpha, .beta = beta, .pad_c = (t == 3) ? 4 : 0});
  check_case({.batch = 2, .M = 13, .N = 7, .K = 129, .alpha = 0.25f, .beta = 3.f, .pad_c = 1});
}

TEST(Gemm, Bf16InputsAccumulateInF32) {
  for (int t = 0; t < 4; ++t) {
    const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
    check_case({.M = 127, .N = 61, .K = 257, .trans_a = ta, .trans_b = tb, .dtype = DType::bf16});
    check_case({.M = 1, .N = 129, .K = 13, .trans_a = ta, .trans_b = tb, .dtype = DType::bf16});
    check_case({.batch = 3, .M = 13, .N = 7, .K = 61, .trans_a = ta, .trans_b = tb,
                .alpha = -1.5f, .beta = 0.5f, .dtype = DType::bf16});
    check_case({.batch = 2, .M = 61, .N = 13, .K = 127, .trans_a = ta, .trans_b = tb,
                .pad_a = 3, .pad_b = 2, .pad_c = 5, .dtype = DType::bf16});
  }
}

TEST(Gemm, EmptyInnerDimensionScalesC) {
  check_case({.M = 7, .N = 13, .K = 0, .beta = 0.f});
  check_case({.M = 7, .N = 13, .K = 0, .alpha = 2.f, .beta = -0.5f, .pad_c = 3});
  check_case({.batch = 2, .M = 0, .N = 13, .K = 5});
}

TEST(Gemm, NeverRunsAReferenceKernel) {
  // A slow "ref:" oneDNN implementation would be correct but hundreds of times slower.
  for (DType dtype : {DType::f32, DType::bf16})
    for (int t = 0; t < 4; ++t)
      for (int64_t pad : {0, 3}) {
        const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
        const int64_t batch = pad ? 2 : 0;
        const int64_t M = 61, N = 13, K = 37;
        const Stored a = make_matrix(batch, ta ? K : M, ta ? M : K, pad, 0.f, dtype, 1);
        const Stored b = make_matrix(batch, tb ? N : K, tb ? K : N, pad, 0.f, dtype, 2);
        const Stored c = make_matrix(batch, M, N, pad, 0.f, DType::f32, 3);
        const GemmArgs g{.a = a.view, .b = b.view, .c = c.view, .trans_a = ta, .trans_b = tb,
                         .alpha = 0.5f, .beta = 1.f, .lda = a.ld_arg, .ldb = b.ld_arg, .ldc = c.ld_arg};
        gemm(g);  // validates the arguments
        const std::string impl = cpu::gemm_impl_name(g);
        EXPECT_EQ(impl.rfind("ref", 0), std::string::npos)
            << impl << " for " << dtype_name(dtype) << " trans " << ta << tb << " pad " << pad;
      }
}

TEST(Gemm, SameShapeReusesTheCachedPrimitive) {
  cpu::gemm_cache_clear();
  const Tensor a = testing::randn({13, 61}, 1), b = testing::randn({61, 7}, 2);
  Tensor c = Tensor::zeros({13, 7});
  gemm({.a = a, .b = b, .c = c});
  EXPECT_EQ(cpu::gemm_cache_size(), 1);
  EXPECT_EQ(cpu::gemm_cache_stats().misses, 1);
  EXPECT_EQ(cpu::gemm_cache_stats().hits, 0);

  // Same shape, other buffers: a hit.
  const Tensor a2 = testing::randn({13, 61}, 3), b2 = testing::randn({61, 7}, 4);
  Tensor c2 = Tensor::zeros({13, 7});
  gemm({.a = a2, .b = b2, .c = c2});
  EXPECT_EQ(cpu::gemm_cache_size(), 1);
  EXPECT_EQ(cpu::gemm_cache_stats().hits, 1);

  // Another alpha, transpose or dtype is another primitive.
  gemm({.a = a, .b = b, .c = c, .alpha = 2.f});
  gemm({.a = b, .b = b2, .c = Tensor::zeros({7, 7}), .trans_a = true});
  gemm({.a = a.to(DType::bf16), .b = b.to(DType::bf16), .c = c});
  EXPECT_EQ(cpu::gemm_cache_size(), 4);
  EXPECT_EQ(cpu::gemm_cache_stats().misses, 4);
  EXPECT_EQ(cpu::gemm_cache_stats().hits, 1);
  cpu::gemm_cache_clear();
  EXPECT_EQ(cpu::gemm_cache_size(), 0);
}

TEST(Gemm, ThreadCountIsPartOfTheCacheKey) {
  // oneDNN fixes its work split when the primitive is built; fewer threads must rebuild.
  const int threads = num_threads();
  cpu::gemm_cache_clear();
  const Tensor a = testing::randn({61, 37}, 1), b = testing::randn({37, 13}, 2);
  Tensor c1 = Tensor::zeros({61, 13}), c2 = Tensor::zeros({61, 13});
  gemm({.a = a, .b = b, .c = c1});
  set_num_threads(1);
  gemm({.a = a, .b = b, .c = c2});
  set_num_threads(threads);
  EXPECT_EQ(cpu::gemm_cache_size(), threads == 1 ? 1 : 2);
  EXPECT_TRUE(testing::allclose(c1, c2, 1e-6, 1e-6));
}

TEST(Gemm, ConcurrentCallersShareTheCache) {
  cpu::gemm_cache_clear();
  auto worker = [](uint64_t seed, bool* ok) {
    const Tensor a = testing::randn({37, 61}, seed), b = testing::randn({61, 13}, seed + 1);
    Tensor c = Tensor::zeros({37, 13}), c_ref = Tensor::zeros({37, 13});
    ref::gemm({.a = a, .b = b, .c = c_ref});
    *ok = true;
    for (int i = 0; i < 20; ++i) {
      gemm({.a = a, .b = b, .c = c});
      *ok = *ok && testing::allclose(c, c_ref, 1e-5, 1e-5);
    }
  };
  bool ok1 = false, ok2 = false;
  std::thread t1(worker, 1, &ok1), t2(worker, 7, &ok2);
  t1.join();
  t2.join();
  EXPECT_TRUE(ok1);
  EXPECT_TRUE(ok2);
  EXPECT_EQ(cpu::gemm_cache_size(), 1);
  EXPECT_EQ(cpu::gemm_cache_stats().hits, 39);
}

// ---- bad input ------------------------------------------------------------------------------

// Expects foundry::Error whose message starts with "gemm: " and contains `part`.
void expect_error(const GemmArgs& g, const std::string& part) {
  try {
    gemm(g);
    ADD_FAILURE() << "no error; expected one containing \"" << part << "\"";
  } catch (const Error& e) {
    EXPECT_EQ(e.message().rfind("gemm: ", 0), 0u) << e.message();
    EXPECT_NE(e.message().find(part), std::string::npos) << e.message();
  }
}

TEST(Gemm, RejectsBadInput) {
  const Tensor a = Tensor::zeros({3, 5}), b = Tensor::zeros({4, 7}), b5 = Tensor::zeros({5, 7});
  const Tensor c = Tensor::zeros({3, 7});
  expect_error({.a = a, .b = b, .c = c}, "inner dimensions differ: a (3, 5) b (4, 7)");
  expect_error({.a = a, .b = b5, .c = c, .trans_a = true}, "a (3, 5) [trans_a] b (5, 7)");
  expect_error({.a = a, .b = b5, .c = c, .trans_b = true}, "inner dimensions differ");
  expect_error({.a = a, .b = b5, .c = Tensor::zeros({3, 5})}, "c has shape (3, 5), expected (3, 7)");
  expect_error({.a = a, .b = b5.to(DType::bf16), .c = c}, "b has dtype bf16, expected f32");
  expect_error({.a = a.to(DType::bf16), .b = b5.to(DType::bf16), .c = c.to(DType::bf16)},
               "c has dtype bf16, expected f32");
  expect_error({.a = a.to(DType::f16), .b = b5.to(DType::f16), .c = c}, "a has dtype f16");
  expect_error({.a = Tensor::zeros({2, 3, 5}), .b = b5, .c = c}, "must all be 2-D, or all 3-D");
  expect_error({.a = Tensor::zeros({2, 3, 5}), .b = Tensor::zeros({3, 5, 7}),
                .c = Tensor::zeros({2, 3, 7})}, "batch sizes differ");
  expect_error({.a = Tensor::zeros({15}), .b = b5, .c = c}, "must all be 2-D, or all 3-D");
  expect_error({.a = a, .b = b5, .c = c, .lda = 4}, "lda 4 is smaller than the row length of a (3, 5)");
  expect_error({.a = a, .b = b5, .c = c, .ldc = -1}, "ldc -1 is negative");
  expect_error({.a = TensorView{nullptr, DType::f32, {3, 5}, Device::cpu()}, .b = b5, .c = c}, "a (3, 5) has no data");
  // c aliasing an input.
  const Tensor sq = Tensor::zeros({5, 5});
  expect_error({.a = sq, .b = Tensor::zeros({5, 5}), .c = sq}, "overlaps an input");
  // Another device: a clear error, nothing touched.
  TensorView ga = a, gb = b5, gc = c;
  ga.device = gb.device = Device::cuda(0);
  expect_error({.a = ga, .b = gb, .c = c}, "different devices");
  gc.device = Device::cuda(0);
  expect_error({.a = ga, .b = gb, .c = gc}, "device cuda:0 is not supported in this build");
}

}  // namespace
}  // namespace foundry
