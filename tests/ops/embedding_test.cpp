// Embedding: vs the reference on odd/prime shapes with repeated ids, finite differences for
// the table, += accumulation into dtable, bit-identical results across thread counts, and
// errors for out-of-range ids and bad shapes/dtypes.
#include "foundry/ops/embedding.h"

#include <cstring>
#include <string>
#include <vector>

#include "foundry/backend/cpu/ref/embedding_ref.h"
#include "foundry/core/threads.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::allclose;
using testing::dot;
using testing::finite_difference_check;
using testing::randn;


// N ids in [0, V), drawn with repeats.
Tensor random_ids(int64_t N, int64_t V, uint64_t seed) {
  const Tensor u = testing::randu({N}, seed, 0.f, static_cast<float>(V));
  std::vector<int32_t> ids(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n)
    ids[n] = std::min<int32_t>(static_cast<int32_t>(u.ptr<float>()[n]), static_cast<int32_t>(V - 1));
  return Tensor::from<int32_t>({N}, ids);
}

TEST(Embedding, MatchesReferenceOnOddShapes) {
  for (int64_t n : {1, 3, 37, 127})
    for (int64_t h : {1, 7, 13, 61, 257})
      for (int64_t v : {1, 13, 61}) {
        SCOPED_TRACE(::testing::Message() << "N " << n << " H " << h << " V " << v);
        const Tensor ids = random_ids(n, v, 1 + n + h + v);
        const Tensor table = randn({v, h}, 2 + n * h), dout = randn({n, h}, 3 + n * h);
        Tensor out = Tensor::empty({n, h}), out_ref = Tensor::empty({n, h});
        embedding_forward({.ids = ids, .table = table, .out = out});
        ref::embedding_forward({.ids = ids, .table = table, .out = out_ref});
        EXPECT_TRUE(allclose(out, out_ref, 0, 0));
        const Tensor dtable0 = randn({v, h}, 4);
        Tensor dtable = dtable0.clone(), dtable_ref = dtable0.clone();
        embedding_backward({.ids = ids, .dout = dout, .dtable = dtable});
        ref::embedding_backward({.ids = ids, .dout = dout, .dtable = dtable_ref});
        EXPECT_TRUE(allclose(dtable, dtable_ref, 1e-5, 1e-5));
      }
}

TEST(Embedding, FiniteDifferences) {
  const Tensor ids = Tensor::from<int32_t>({5}, std::vector<int32_t>{2, 0, 2, 4, 2});
  const Tensor table = randn({5, 7}, 1), w = randn({5, 7}, 2);  // row 1, 3 unused: zero grad
  Tensor out = Tensor::empty({5, 7}), dtable = Tensor::zeros({5, 7});
  auto loss = [&] {
    embedding_forward({.ids = ids, .table = table, .out = out});
    return dot(out, w);
  };
  embedding_backward({.ids = ids, .dout = w, .dtable = dtable});
  EXPECT_TRUE(finite_difference_check(loss, table, dtable, 1e-2, 2e-2, 2e-3, 35));
}

TEST(Embedding, BackwardAccumulates) {
  const Tensor ids = random_ids(127, 13, 5), dout = randn({127, 257}, 6);
  Tensor once = Tensor::zeros({13, 257}), twice = Tensor::zeros({13, 257});
  embedding_backward({.ids = ids, .dout = dout, .dtable = once});
  embedding_backward({.ids = ids, .dout = dout, .dtable = twice});
  embedding_backward({.ids = ids, .dout = dout, .dtable = twice});
  for (int64_t i = 0; i < once.numel(); ++i) once.ptr<float>()[i] *= 2.f;
  EXPECT_TRUE(allclose(twice, once, 1e-6, 1e-6));
}

// Every thread count adds each column's rows in the same order: bit-identical dtable.
TEST(Embedding, BackwardIsDeterministicAcrossThreadCounts) {
  const Tensor ids = random_ids(1000, 3, 7), dout = randn({1000, 257}, 8);  // many repeats
  const int threads = num_threads();
  Tensor a = Tensor::zeros({3, 257}), b = Tensor::zeros({3, 257});
  embedding_backward({.ids = ids, .dout = dout, .dtable = a});
  set_num_threads(1);
  embedding_backward({.ids = ids, .dout = dout, .dtable = b});
  set_num_threads(threads);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0);
}

TEST(Embedding, OutOfRangeIdsNameIdAndPosition) {
  const Tensor table = randn({5, 7}, 1);
  Tensor out = Tensor::empty({4, 7}), dtable = Tensor::zeros({5, 7});
  const Tensor neg = Tensor::from<int32_t>({4}, std::vector<int32_t>{0, 1, -1, 2});
  const Tensor big = Tensor::from<int32_t>({4}, std::vector<int32_t>{0, 1, 4, 5});
  EXPECT_ERROR_MENTIONS(embedding_forward({.ids = neg, .table = table, .out = out}),
                        "embedding_forward", "id -1", "position 2", "[0, 5)");
  EXPECT_ERROR_MENTIONS(embedding_forward({.ids = big, .table = table, .out = out}),
                        "embedding_forward", "id 5", "position 3");
  EXPECT_ERROR_MENTIONS(embedding_backward({.ids = big, .dout = out, .dtable = dtable}),
                        "embedding_backward", "id 5", "position 3");
  for (float f : dtable.to_vector()) EXPECT_EQ(f, 0.f);  // nothing written before the error
}

TEST(Embedding, BadShapesAndDtypes) {
  const Tensor ids = Tensor::from<int32_t>({3}, std::vector<int32_t>{0, 1, 2});
  const Tensor ids_f = Tensor::zeros({3}), ids_2d = Tensor::zeros({3, 1}, DType::i32);
  const Tensor table = randn({5, 7}, 1), table_1d = randn({35}, 1);
  Tensor out = Tensor::empty({3, 7}), out_bad = Tensor::empty({3, 8});
  EXPECT_ERROR_MENTIONS(embedding_forward({.ids = ids_f, .table = table, .out = out}),
                        "embedding_forward", "ids", "f32", "i32");
  EXPECT_ERROR_MENTIONS(embedding_forward({.ids = ids_2d, .table = table, .out = out}),
                        "embedding_forward", "ids", "(3, 1)");
  EXPECT_ERROR_MENTIONS(embedding_forward({.ids = ids, .table = table_1d, .out = out}),
                        "embedding_forward", "table", "(35,)");
  EXPECT_ERROR_MENTIONS(embedding_forward({.ids = ids, .table = table, .out = out_bad}),
                        "embedding_forward", "out", "(3, 8)", "(3, 7)");
  EXPECT_ERROR_MENTIONS(embedding_backward({.ids = ids, .dout = out_bad, .dtable = table}),
                        "embedding_backward", "dout", "(3, 8)");
  EXPECT_ERROR_MENTIONS(embedding_backward({.ids = ids, .dout = out}), "embedding_backward",
                        "dtable");
}

}  // namespace
}  // namespace foundry
