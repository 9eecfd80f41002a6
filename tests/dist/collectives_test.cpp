// Every collective of the MPI communicator against values computed locally from known per-rank
// inputs. Run by CTest as `mpirun -np N test_dist` for N = 2, 4, 8 (tests/CMakeLists.txt).
// Every rank runs every test and calls the same collectives in the same order; checks are EXPECT
// (never ASSERT between collectives) so a failing rank keeps matching the others' calls, and gtest
// makes that rank exit non-zero, which mpirun propagates.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "dist_util.h"
#include "foundry/comm/communicator.h"

namespace foundry {
namespace {

using testing::filled;
using testing::values;

const DType kAllDtypes[] = {DType::f32, DType::bf16, DType::f16, DType::i8, DType::i32, DType::i64, DType::u8};

// Rank r's element i: small values, exact in every dtype and in sums over 8 ranks.
double input(DType t, int r, int64_t i) {
  const double v = static_cast<double>((3 * r + 5 * i) % 11);
  if (t == DType::u8) return v;                       // unsigned
  if (t == DType::f32 || t == DType::bf16 || t == DType::f16) return v * 0.25 - 1.0;
  return v - 4.0;
}

template <class F> std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

TEST(Dist, WorldIsMpi) {
  Communicator& w = world();
  EXPECT_GE(w.size(), 2);
  EXPECT_EQ(w.name(), "world");
  // sum over ranks of (r + 0.125) = n(n-1)/2 + n/8
  const int n = w.size();
  EXPECT_DOUBLE_EQ(w.all_reduce_sum(w.rank() + 0.125), n * (n - 1) / 2.0 + n / 8.0);
  w.barrier();
}

TEST(Dist, AllReduceSumMaxMin) {
  Communicator& w = world();
  for (DType t : kAllDtypes)
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min})
      for (int64_t n : {0, 1, 37}) {
        Tensor x = filled(t, n, [&](int64_t i) { return input(t, w.rank(), i); });
        w.all_reduce(x, op);
        std::vector<double> want(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          double acc = input(t, 0, i);
          for (int r = 1; r < w.size(); ++r) {
            const double v = input(t, r, i);
            acc = op == ReduceOp::sum ? acc + v : op == ReduceOp::max ? std::max(acc, v) : std::min(acc, v);
          }
          want[i] = acc;
        }
        EXPECT_EQ(values(x), want) << dtype_name(t) << " op " << static_cast<int>(op) << " n " << n;
      }
}

TEST(Dist, ReduceScatter) {
  Communicator& w = world();
  const int64_t n = 5;  // per-rank chunk (odd)
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64}) {
    Tensor in = filled(t, w.size() * n, [&](int64_t i) { return input(t, w.rank(), i); });
    Tensor out = Tensor::zeros({n}, t);
    w.reduce_scatter(in, out);
    std::vector<double> want(n, 0.0);
    for (int64_t j = 0; j < n; ++j)
      for (int r = 0; r < w.size(); ++r) want[j] += input(t, r, w.rank() * n + j);
    EXPECT_EQ(values(out), want) << dtype_name(t);
  }
}

// Chunks of uneven length, zeros included: counts 2, 0, 3, 1, 2, 0, 3, 1 (n = 2: 2, 0).
TEST(Dist, ReduceScatterVUnevenWithZeros) {
  Communicator& w = world();
  std::vector<int64_t> counts(w.size()), offset(w.size(), 0);
  for (int r = 0; r < w.size(); ++r) counts[r] = (2 + 3 * r) % 4;
  for (int r = 1; r < w.size(); ++r) offset[r] = offset[r - 1] + counts[r - 1];
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  for (DType t : kAllDtypes) {
    Tensor in = filled(t, total, [&](int64_t i) { return input(t, w.rank(), i); });
    Tensor out = filled(t, counts[w.rank()], [](int64_t) { return 7.0; });
    w.reduce_scatter_v(in, out, counts);
    std::vector<double> want(static_cast<size_t>(counts[w.rank()]), 0.0);
    for (int64_t j = 0; j < counts[w.rank()]; ++j)
      for (int r = 0; r < w.size(); ++r) want[j] += input(t, r, offset[w.rank()] + j);
    EXPECT_EQ(values(out), want) << dtype_name(t);
  }
  // Equal counts: the same as reduce_scatter.
  const int64_t n = 3;
  const std::vector<int64_t> equal(w.size(), n);
  Tensor in = filled(DType::f32, w.size() * n, [&](int64_t i) { return input(DType::f32, w.rank(), i); });
  Tensor a = Tensor::zeros({n}), b = Tensor::zeros({n});
  w.reduce_scatter_v(in, a, equal);
  w.reduce_scatter(in, b);
  EXPECT_EQ(values(a), values(b));
}

// Local argument errors throw before any communication (every rank makes the same mistakes).
TEST(Dist, ReduceScatterVWrongSizesThrow) {
  Communicator& w = world();
  std::vector<int64_t> counts(w.size(), 2);
  Tensor in = Tensor::zeros({2 * w.size()}), out = Tensor::zeros({2});
  std::string e = error_of([&] { w.reduce_scatter_v(Tensor::zeros({2 * w.size() + 1}), out, counts); });
  EXPECT_NE(e.find("reduce_scatter_v on group 'world': counts sum to " + std::to_string(2 * w.size()) +
                   " but input"), std::string::npos) << e;
  e = error_of([&] { w.reduce_scatter_v(in, Tensor::zeros({3}), counts); });
  EXPECT_NE(e.find("counts[" + std::to_string(w.rank()) + "] = 2 but this rank's output"), std::string::npos) << e;
  const std::vector<int64_t> short_counts(w.size() - 1, 2);
  e = error_of([&] { w.reduce_scatter_v(in, out, short_counts); });
  EXPECT_NE(e.find(std::to_string(w.size() - 1) + " counts for a group of size"), std::string::npos) << e;
  counts[0] = -1;
  counts[w.size() - 1] += 3;
  e = error_of([&] { w.reduce_scatter_v(Tensor::zeros({2 * w.size() + 2}), out, counts); });
  EXPECT_NE(e.find("counts[0] = -1 is negative"), std::string::npos) << e;
  e = error_of([&] { w.reduce_scatter_v(in, Tensor::zeros({2}, DType::i32), std::vector<int64_t>(w.size(), 2)); });
  EXPECT_NE(e.find("differ in dtype"), std::string::npos) << e;
  e = error_of([&] {
    w.reduce_scatter_v(Tensor::zeros({2 * w.size()}, DType::boolean), Tensor::zeros({2}, DType::boolean),
                       std::vector<int64_t>(w.size(), 2));
  });
  EXPECT_NE(e.find("reduce_scatter_v on group 'world': cannot reduce"), std::string::npos) << e;
  // Counts beyond MPI's int: only checked locally, the data is never touched.
  Tensor a = Tensor::zeros({4});
  std::vector<int64_t> huge(w.size(), 0);
  huge[0] = int64_t{1} << 31;
  TensorView big{a.data(), DType::f32, Shape{int64_t{1} << 31}, Device::cpu()};
  TensorView mine{a.data(), DType::f32, Shape{huge[w.rank()]}, Device::cpu()};
  e = error_of([&] { w.reduce_scatter_v(big, mine, huge); });
  EXPECT_NE(e.find("exceeds MPI's int count limit"), std::string::npos) << e;
  w.barrier();
}

TEST(Dist, AllGather) {
  Communicator& w = world();
  const int64_t n = 3;
  for (DType t : kAllDtypes) {
    Tensor in = filled(t, n, [&](int64_t i) { return input(t, w.rank(), i); });
    Tensor out = Tensor::zeros({w.size() * n}, t);
    w.all_gather(in, out);
    std::vector<double> want;
    for (int r = 0; r < w.size(); ++r)
      for (int64_t i = 0; i < n; ++i) want.push_back(input(t, r, i));
    EXPECT_EQ(values(out), want) << dtype_name(t);
  }
}

TEST(Dist, AllGatherVUnevenWithZeros) {
  Communicator& w = world();
  std::vector<int64_t> counts(w.size());
  for (int r = 0; r < w.size(); ++r) counts[r] = (3 * r) % 4;  // 0, 3, 2, 1, 0, 3, ...
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  for (DType t : {DType::f32, DType::bf16, DType::i32, DType::u8}) {
    Tensor in = filled(t, counts[w.rank()], [&](int64_t i) { return input(t, w.rank(), i); });
    Tensor out = Tensor::zeros({total}, t);
    w.all_gather_v(in, out, counts);
    std::vector<double> want;
    for (int r = 0; r < w.size(); ++r)
      for (int64_t i = 0; i < counts[r]; ++i) want.push_back(input(t, r, i));
    EXPECT_EQ(values(out), want) << dtype_name(t);
  }
}

TEST(Dist, AllToAllVUnevenWithOffsets) {
  Communicator& w = world();
  const int me = w.rank(), n = w.size();
  auto count = [](int from, int to) -> int64_t { return (from + 2 * to) % 3; };  // zeros included
  // Send blocks in peer order with one unused element between them; receive blocks in reverse
  // peer order, so offsets (not counts) decide where data lands.
  std::vector<int64_t> sc(n), so(n), rc(n), ro(n);
  int64_t s_off = 0, r_off = 0;
  for (int p = 0; p < n; ++p) {
    sc[p] = count(me, p), so[p] = s_off, s_off += sc[p] + 1;
  }
  for (int p = n - 1; p >= 0; --p) {
    rc[p] = count(p, me), ro[p] = r_off, r_off += rc[p];
  }
  for (DType t : {DType::f32, DType::bf16, DType::i64}) {
    // element k of the block for peer p: 100 * me + 10 * p + k (a unique tag per (from, to, k))
    auto tag = [](int from, int to, int64_t k) { return static_cast<double>(100 * from + 10 * to + k); };
    Tensor in = filled(t, s_off, [](int64_t) { return -1.0; });
    Tensor out = filled(t, r_off + 2, [](int64_t) { return -7.0; });  // 2 trailing untouched
    if (t == DType::bf16) {  // keep tags exact in bf16 (8 significant bits): small tags only
      for (int p = 0; p < n; ++p)
        for (int64_t k = 0; k < sc[p]; ++k) in.ptr<bf16>()[so[p] + k] = bf16(static_cast<float>(8 * me + p));
    } else {
      for (int p = 0; p < n; ++p)
        for (int64_t k = 0; k < sc[p]; ++k) {
          Tensor one = filled(t, 1, [&](int64_t) { return tag(me, p, k); });
          std::memcpy(static_cast<char*>(in.data()) + (so[p] + k) * dtype_size(t), one.data(), dtype_size(t));
        }
    }
    w.all_to_all_v(in, sc, so, out, rc, ro);
    std::vector<double> want(static_cast<size_t>(r_off + 2), -7.0);
    for (int p = 0; p < n; ++p)
      for (int64_t k = 0; k < rc[p]; ++k)
        want[ro[p] + k] = t == DType::bf16 ? 8 * p + me : tag(p, me, k);
    EXPECT_EQ(values(out), want) << dtype_name(t);
  }
}

TEST(Dist, BroadcastFromLastRank) {
  Communicator& w = world();
  const int root = w.size() - 1;
  for (DType t : {DType::f32, DType::bf16, DType::i64, DType::u8}) {
    Tensor x = filled(t, 9, [&](int64_t i) { return input(t, w.rank(), i); });
    w.broadcast(x, root);
    std::vector<double> want;
    for (int64_t i = 0; i < 9; ++i) want.push_back(input(t, root, i));
    EXPECT_EQ(values(x), want) << dtype_name(t);
  }
}

TEST(Dist, SendRecvRing) {
  Communicator& w = world();
  const int next = (w.rank() + 1) % w.size(), prev = (w.rank() + w.size() - 1) % w.size();
  for (DType t : {DType::f32, DType::bf16, DType::i32}) {
    Tensor mine = filled(t, 6, [&](int64_t i) { return input(t, w.rank(), i); });
    Tensor got = Tensor::zeros({6}, t);
    if (w.rank() % 2 == 0) {  // even ranks send first, odd ranks receive first: no cycle of waits
      w.send(mine, next, 7);
      w.recv(got, prev, 7);
    } else {
      w.recv(got, prev, 7);
      w.send(mine, next, 7);
    }
    std::vector<double> want;
    for (int64_t i = 0; i < 6; ++i) want.push_back(input(t, prev, i));
    EXPECT_EQ(values(got), want) << dtype_name(t);
  }
}

TEST(Dist, AsyncSendRecvBothDirectionsAtOnce) {
  // Every rank sends to both neighbours and receives from both before waiting on anything (the
  // pipeline's send_forward_recv_backward pattern): no ordering needed.
  Communicator& w = world();
  const int next = (w.rank() + 1) % w.size(), prev = (w.rank() + w.size() - 1) % w.size();
  const int64_t n = 1 << 16;  // above the eager limit: a blocking pair in this order would deadlock
  Tensor mine = filled(DType::f32, n, [&](int64_t i) { return input(DType::f32, w.rank(), i); });
  Tensor from_prev = Tensor::zeros({n}), from_next = Tensor::zeros({n});
  std::vector<std::unique_ptr<Request>> reqs;
  reqs.push_back(w.send_async(mine, next, 3));
  reqs.push_back(w.send_async(mine, prev, 4));
  reqs.push_back(w.recv_async(from_prev, prev, 3));
  reqs.push_back(w.recv_async(from_next, next, 4));
  for (auto& r : reqs) r->wait();
  for (int64_t i = 0; i < n; i += 997) {
    EXPECT_EQ(from_prev.ptr<float>()[i], static_cast<float>(input(DType::f32, prev, i)));
    EXPECT_EQ(from_next.ptr<float>()[i], static_cast<float>(input(DType::f32, next, i)));
  }
  if (w.rank() == 0) {
    w.send_async(Tensor::zeros({2}), 1, 5)->wait();
  } else if (w.rank() == 1) {
    Tensor x = Tensor::zeros({4});
    const std::string e = error_of([&] { w.recv_async(x, 0, 5)->wait(); });
    EXPECT_NE(e.find("expected 4 elements from rank 0 (tag 5)"), std::string::npos) << e;
  }
  w.barrier();
}

TEST(Dist, RecvOfWrongSizeThrows) {
  Communicator& w = world();
  if (w.rank() == 0) {
    w.send(Tensor::zeros({3}), 1, 11);
    w.send(Tensor::zeros({5}), 1, 12);
  } else if (w.rank() == 1) {
    Tensor x = Tensor::zeros({4});
    EXPECT_NE(error_of([&] { w.recv(x, 0, 11); }).find("expected 4 elements from rank 0 (tag 11)"),
              std::string::npos);
    const std::string e = error_of([&] { w.recv(x, 0, 12); });  // MPI_ERR_TRUNCATE
    EXPECT_NE(e.find("MPI_Recv on group 'world' (rank 1 of"), std::string::npos) << e;
  }
  w.barrier();
}

TEST(Dist, SplitEvenOddReversed) {
  Communicator& w = world();
  const int color = w.rank() % 2;
  auto sub = w.split(color, -w.rank(), "parity");  // key reverses the order
  EXPECT_EQ(sub->name(), "parity");
  std::vector<int> members;  // world ranks of this group, in the new rank order
  for (int r = w.size() - 1; r >= 0; --r)
    if (r % 2 == color) members.push_back(r);
  EXPECT_EQ(sub->size(), static_cast<int>(members.size()));
  EXPECT_EQ(members[sub->rank()], w.rank());

  Tensor me = filled(DType::i32, 1, [&](int64_t) { return w.rank(); });
  Tensor all = Tensor::zeros({sub->size()}, DType::i32);
  sub->all_gather(me, all);
  EXPECT_EQ(values(all), std::vector<double>(members.begin(), members.end()));
  EXPECT_DOUBLE_EQ(sub->all_reduce_sum(w.rank()), std::accumulate(members.begin(), members.end(), 0.0));

  // Pairs (ranks 2k, 2k+1), split again from the parity group would need >= 2 members: split the
  // world instead and broadcast from the pair's second rank.
  auto pair = w.split(w.rank() / 2, w.rank(), "pair");
  EXPECT_EQ(pair->size(), 2);
  EXPECT_EQ(pair->rank(), w.rank() % 2);
  Tensor x = filled(DType::f32, 4, [&](int64_t i) { return w.rank() * 10 + i; });
  pair->broadcast(x, 1);
  const int src = (w.rank() / 2) * 2 + 1;
  EXPECT_EQ(values(x), (std::vector<double>{src * 10.0, src * 10.0 + 1, src * 10.0 + 2, src * 10.0 + 3}));
}

TEST(Dist, AsyncVariants) {
  Communicator& w = world();
  const int64_t n = 7;
  for (DType t : {DType::f32, DType::bf16}) {
    Tensor a = filled(t, n, [&](int64_t i) { return input(t, w.rank(), i); });
    Tensor rs_in = filled(t, w.size() * n, [&](int64_t i) { return input(t, w.rank(), i); });
    Tensor rs_out = Tensor::zeros({n}, t);
    Tensor g_in = filled(t, n, [&](int64_t i) { return input(t, w.rank(), i + 1); });
    Tensor g_out = Tensor::zeros({w.size() * n}, t);
    // Three collectives in flight at once, completed in reverse order.
    auto r1 = w.all_reduce_async(a, ReduceOp::max);
    auto r2 = w.reduce_scatter_async(rs_in, rs_out);
    auto r3 = w.all_gather_async(g_in, g_out);
    r3->wait();
    r2->wait();
    r1->wait();
    r1->wait();  // idempotent
    std::vector<double> max(n), rs(n, 0.0), g;
    for (int64_t i = 0; i < n; ++i) {
      max[i] = input(t, 0, i);
      for (int r = 0; r < w.size(); ++r) max[i] = std::max(max[i], input(t, r, i));
      for (int r = 0; r < w.size(); ++r) rs[i] += input(t, r, w.rank() * n + i);
    }
    for (int r = 0; r < w.size(); ++r)
      for (int64_t i = 0; i < n; ++i) g.push_back(input(t, r, i + 1));
    EXPECT_EQ(values(a), max) << dtype_name(t);
    EXPECT_EQ(values(rs_out), rs) << dtype_name(t);
    EXPECT_EQ(values(g_out), g) << dtype_name(t);
  }
  // A request dropped without wait() completes in its destructor.
  Tensor s = filled(DType::i64, 3, [&](int64_t i) { return w.rank() + i; });
  { auto r = w.all_reduce_async(s); }
  const double ranks = w.size() * (w.size() - 1) / 2.0;
  EXPECT_EQ(values(s), (std::vector<double>{ranks, ranks + w.size(), ranks + 2 * w.size()}));
}

TEST(Dist, LocalErrorsNameCollectiveGroupAndDevice) {
  Communicator& w = world();
  Tensor a = Tensor::zeros({4});
  TensorView dev{a.data(), DType::f32, Shape{4}, Device::cuda(0)};
  std::string e = error_of([&] { w.all_reduce(dev); });
  EXPECT_NE(e.find("all_reduce on group 'world'"), std::string::npos) << e;
  EXPECT_NE(e.find("not supported by the MPI communicator (use NCCL)"), std::string::npos) << e;
  e = error_of([&] { w.all_gather(a, a); });
  EXPECT_NE(e.find("all_gather on group 'world' of size"), std::string::npos) << e;
  Tensor b = Tensor::zeros({4}, DType::boolean);
  e = error_of([&] { w.all_reduce(b); });
  EXPECT_NE(e.find("cannot reduce"), std::string::npos) << e;
  TensorView huge{a.data(), DType::f32, Shape{int64_t{1} << 31}, Device::cpu()};  // never touched
  e = error_of([&] { w.all_reduce(huge); });
  EXPECT_NE(e.find("exceeds MPI's int count limit"), std::string::npos) << e;
  e = error_of([&] { w.split(-1, 0, "bad"); });
  EXPECT_NE(e.find("color -1 must be >= 0"), std::string::npos) << e;
  w.barrier();
}

}  // namespace
}  // namespace foundry

// Only rank 0 prints the full report; the other ranks print failures only (gtest's brief mode).
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (foundry::world().rank() != 0) GTEST_FLAG_SET(brief, true);
  return RUN_ALL_TESTS();
}
