// GradBuckets (optim/grad_buckets.h) over the MPI world (2, 4, 8 ranks): 12 parameters of mixed
// sizes, dense and expert interleaved at registration, one of them larger than the bucket; dense
// gradients reduced over the world, expert gradients over an expert-data-parallel group (ranks of
// equal parity: size 1 at 2 ranks, where nothing may change). Every rank fills the whole gradient
// arena (alignment padding included) with small integers, so every sum is exact and the result of
// the bucketed all-reduces must equal one all_reduce of each whole range bit for bit. Marking
// orders: reverse registration (backward's order; each bucket starts at its front parameter),
// shuffled identically on every rank, shuffled differently on each rank (buckets still start in
// bucket order), and only some parameters marked (finish() starts the rest). Several steps reuse
// the same GradBuckets (reset between steps); bucket sizes from one parameter per bucket to one
// bucket for everything.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <random>

#include "foundry/comm/communicator.h"
#include "foundry/optim/grad_buckets.h"

namespace foundry {
namespace {

struct Model {
  static constexpr std::array<std::pair<int64_t, bool>, 12> kSpecs = {{{48, false}, {5, false}, {130, true},
                                                                      {1000, false}, {17, false}, {64, true},
                                                                      {200, true}, {9, false}, {77, false},
                                                                      {1, true}, {300, false}, {31, false}}};
  std::array<Param, 12> params;
  ParamTable table;
  Model() {
    for (size_t i = 0; i < kSpecs.size(); ++i)
      table.add(params[i], {.name = "layer." + std::to_string(i) + ".weight", .shape = Shape{kSpecs[i].first},
                            .expert_local = kSpecs[i].second});
    table.allocate(3);
  }
};

enum class Order { reverse, shuffled_same, shuffled_per_rank, partial };

void fill(const TensorView& g, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> d(-16, 16);
  float* p = g.ptr<float>();
  for (int64_t i = 0; i < g.numel(); ++i) p[i] = static_cast<float>(d(rng));
}

Tensor copy_of(const TensorView& v) {
  Tensor t = Tensor::empty(v.shape);
  std::memcpy(t.data(), v.data, static_cast<size_t>(v.nbytes()));
  return t;
}

bool same_bits(const TensorView& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data, b.data(), static_cast<size_t>(a.nbytes())) == 0;
}

TEST(GradBuckets, BucketedReductionEqualsOneAllReduceOfTheRange) {
  Communicator& w = world();
  const int rank = w.rank();
  if (w.size() > 1 && w.size() % 2 != 0) GTEST_SKIP() << "needs an even number of ranks";
  const std::unique_ptr<Communicator> edp = w.split(rank % 2, rank, "edp");
  Model m;
  const int n = m.table.size();
  const TensorView dense_g = m.table.grad_buffer(ParamTable::Kind::dense);
  const TensorView expert_g = m.table.grad_buffer(ParamTable::Kind::expert);

  for (const int64_t bucket_bytes : {1, 512, 1500, 4096, 0}) {
    GradBuckets dense(m.table, ParamTable::Kind::dense, w, bucket_bytes);
    GradBuckets expert(m.table, ParamTable::Kind::expert, *edp, bucket_bytes);
    for (const Order order : {Order::reverse, Order::shuffled_same, Order::shuffled_per_rank, Order::partial}) {
      const int step = static_cast<int>(order);
      SCOPED_TRACE(::testing::Message() << "bucket_bytes " << bucket_bytes << ", order " << step);
      fill(m.table.grad_buffer(), 1000 * static_cast<uint64_t>(bucket_bytes) + 10 * step + rank);
      Tensor want_dense = copy_of(dense_g), want_expert = copy_of(expert_g);
      w.all_reduce(want_dense.view());
      edp->all_reduce(want_expert.view());

      std::vector<int> marks(static_cast<size_t>(n));
      std::iota(marks.rbegin(), marks.rend(), 0);  // n-1, ..., 0
      if (order == Order::shuffled_same) std::shuffle(marks.begin(), marks.end(), std::mt19937(7));
      if (order == Order::shuffled_per_rank) std::shuffle(marks.begin(), marks.end(), std::mt19937(100 + rank));
      if (order == Order::partial) marks = {11, 9, 4, 3, 0};
      for (int i : marks) {
        dense.mark_ready(i);
        expert.mark_ready(i);
        if (order == Order::reverse) {  // a bucket starts as soon as its front parameter is ready
          const int b = dense.bucket_of(i);
          if (b >= 0 && dense.bucket(b).params.back() == i) {
            EXPECT_EQ(dense.num_started(), b + 1);
          }
        }
      }
      if (order == Order::reverse) {
        EXPECT_EQ(dense.num_started(), dense.num_buckets());
        EXPECT_EQ(expert.num_started(), expert.num_buckets());
      }
      dense.finish();
      expert.finish();
      EXPECT_TRUE(same_bits(dense_g, want_dense)) << "dense, " << dense.num_buckets() << " buckets";
      EXPECT_TRUE(same_bits(expert_g, want_expert)) << "expert, " << expert.num_buckets() << " buckets";
    }
    // Layout: bucket_bytes 1 gives one bucket per parameter (8 dense, 4 expert), 0 one bucket per
    // kind; parameter 3 (1000 f32, 4000 bytes) alone exceeds buckets of 512 and 1500 bytes.
    if (bucket_bytes == 1) {
      EXPECT_EQ(dense.num_buckets(), 8);
      EXPECT_EQ(expert.num_buckets(), 4);
    }
    if (bucket_bytes == 0) {
      EXPECT_EQ(dense.num_buckets(), 1);
      EXPECT_EQ(expert.num_buckets(), 1);
    }
    if (bucket_bytes == 512 || bucket_bytes == 1500) {
      const auto& big = dense.bucket(dense.bucket_of(3));
      EXPECT_GT(big.bytes(), bucket_bytes);
      EXPECT_EQ(big.params.back(), 3);  // the bucket closes with it
      EXPECT_GT(dense.num_buckets(), 2);
    }
    // Bucket boundaries are parameter boundaries, and the buckets tile each range from its end.
    for (const GradBuckets* g : {&dense, &expert}) {
      const auto* base = static_cast<const char*>(m.table.grad_buffer(g->kind()).data);
      int64_t end = g->bytes() / 4;
      for (int b = 0; b < g->num_buckets(); ++b) {
        EXPECT_EQ(g->bucket(b).end, end);
        const int front = g->bucket(b).params.back();
        EXPECT_EQ(g->bucket(b).begin, (static_cast<const char*>(m.params[static_cast<size_t>(front)].grad.data()) - base) / 4);
        end = g->bucket(b).begin;
      }
      EXPECT_EQ(end, 0);
    }
  }
}

}  // namespace
}  // namespace foundry
