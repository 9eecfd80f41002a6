// The NCCL communicator: the checks of collectives_test.cpp on CUDA tensors (inputs built on the
// host, copied to this rank's GPU, results copied back and compared exactly). Part of test_dist
// (mpirun -np 2, 4, 8); compiled only with NCCL (FOUNDRY_HAVE_NCCL). One GPU per rank: every test
// skips, on every rank together, unless each node has at least as many visible GPUs as it has
// ranks. The world's NCCL communicator is made once (bootstrapped over the MPI world) and reused.
#ifdef FOUNDRY_HAVE_NCCL

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "dist_util.h"
#include "foundry/comm/communicator.h"
#include "foundry/comm/nccl_communicator.h"

namespace foundry {
namespace {

using testing::filled;
using testing::values;

const DType kAllDtypes[] = {DType::f32, DType::bf16, DType::f16, DType::i8, DType::i32, DType::i64, DType::u8};

// Rank r's element i: small values, exact in every dtype and in sums over 8 ranks.
double input(DType t, int r, int64_t i) {
  const double v = static_cast<double>((3 * r + 5 * i) % 11);
  if (t == DType::u8) return v;
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

// This rank's index among the ranks on its node, and how many ranks the node has (host names
// gathered over the MPI world).
std::pair<int, int> local_rank_and_size() {
  Communicator& w = world();
  constexpr int64_t kLen = 64;
  Tensor mine = Tensor::zeros({kLen}, DType::u8), all = Tensor::zeros({w.size() * kLen}, DType::u8);
  gethostname(reinterpret_cast<char*>(mine.ptr<uint8_t>()), kLen - 1);
  w.all_gather(mine, all);
  const uint8_t* a = all.ptr<uint8_t>();
  const uint8_t* me = a + w.rank() * kLen;
  int local_rank = 0, local_size = 0;
  for (int r = 0; r < w.size(); ++r)
    if (std::memcmp(a + r * kLen, me, kLen) == 0) {
      local_size += 1;
      if (r < w.rank()) local_rank += 1;
    }
  return {local_rank, local_size};
}

struct NcclWorld {
  bool ready = false;
  std::unique_ptr<NcclCommunicator> comm;  // null: skip (reason below)
  std::string skip;
};

NcclWorld& nccl_world_state() {
  static NcclWorld s;
  return s;
}

// The world over NCCL, or nullptr (with a reason) on every rank when some node lacks GPUs.
NcclCommunicator* nccl_world(std::string* why) {
  NcclWorld& s = nccl_world_state();
  if (!s.ready) {
    s.ready = true;
    const auto [local_rank, local_size] = local_rank_and_size();
    const int visible = cuda_device_count();
    Tensor ok = Tensor::empty({1}, DType::i32);
    ok.ptr<int32_t>()[0] = visible >= local_size ? 1 : 0;
    world().all_reduce(ok, ReduceOp::min);
    if (ok.ptr<int32_t>()[0] == 1) {
      try {
        s.comm = make_nccl_communicator(world(), local_rank, "nccl_world");
      } catch (const Error& e) {
        ADD_FAILURE() << e.what();
        s.skip = "the NCCL world could not be made (see the failure above)";
      }
    } else {
      s.skip = fmt::format("NCCL needs one GPU per rank: this node has {} ranks and {} visible CUDA devices "
                           "(or another node has too few)", local_size, visible);
    }
  }
  *why = s.skip;
  return s.comm.get();
}

// Communicators are destroyed inside RUN_ALL_TESTS (before the CUDA runtime and MPI shut down).
class NcclEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { nccl_world_state().comm.reset(); }
};
[[maybe_unused]] ::testing::Environment* const kNcclEnvironment =
    ::testing::AddGlobalTestEnvironment(new NcclEnvironment);

// Declares `NcclCommunicator& w` (the NCCL world) or skips the test on every rank.
#define NCCL_WORLD_OR_SKIP(w)                               \
  std::string skip_reason;                                  \
  NcclCommunicator* w##_ptr = nccl_world(&skip_reason);     \
  if (w##_ptr == nullptr) GTEST_SKIP() << skip_reason;      \
  NcclCommunicator& w = *w##_ptr

Tensor on_gpu(const NcclCommunicator& c, const Tensor& host) { return host.to_device(Device::cuda(c.device())); }
std::vector<double> host_values(const Tensor& d) { return values(d.to_device(Device::cpu())); }

// Runs everywhere (no GPU needed): a missing device fails on every rank with a clear message,
// before any rank starts NCCL (no rank is left waiting in the bootstrap).
TEST(NcclDist, MissingDeviceFailsOnEveryRank) {
  Communicator& w = world();
  const int visible = cuda_device_count();
  const std::string e = error_of([&] { make_nccl_communicator(w, visible, "bad"); });
  EXPECT_NE(e.find(fmt::format("make_nccl_communicator for group 'bad' (rank {} of {}): CUDA device {} is "
                               "not present ({} visible)", w.rank(), w.size(), visible, visible)),
            std::string::npos) << e;
  w.barrier();
}

TEST(NcclDist, AllReduceSumMaxMin) {
  NCCL_WORLD_OR_SKIP(w);
  for (DType t : kAllDtypes)
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min})
      for (int64_t n : {0, 1, 37}) {
        Tensor x = on_gpu(w, filled(t, n, [&](int64_t i) { return input(t, w.rank(), i); }));
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
        EXPECT_EQ(host_values(x), want) << dtype_name(t) << " op " << static_cast<int>(op) << " n " << n;
      }
}

TEST(NcclDist, ReduceScatter) {
  NCCL_WORLD_OR_SKIP(w);
  const int64_t n = 5;
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64}) {
    Tensor in = on_gpu(w, filled(t, w.size() * n, [&](int64_t i) { return input(t, w.rank(), i); }));
    Tensor out = Tensor::zeros({n}, t, Device::cuda(w.device()));
    w.reduce_scatter(in, out);
    std::vector<double> want(n, 0.0);
    for (int64_t j = 0; j < n; ++j)
      for (int r = 0; r < w.size(); ++r) want[j] += input(t, r, w.rank() * n + j);
    EXPECT_EQ(host_values(out), want) << dtype_name(t);
  }
}

TEST(NcclDist, AllGather) {
  NCCL_WORLD_OR_SKIP(w);
  const int64_t n = 3;
  for (DType t : kAllDtypes) {
    Tensor in = on_gpu(w, filled(t, n, [&](int64_t i) { return input(t, w.rank(), i); }));
    Tensor out = Tensor::zeros({w.size() * n}, t, Device::cuda(w.device()));
    w.all_gather(in, out);
    std::vector<double> want;
    for (int r = 0; r < w.size(); ++r)
      for (int64_t i = 0; i < n; ++i) want.push_back(input(t, r, i));
    EXPECT_EQ(host_values(out), want) << dtype_name(t);
  }
}

TEST(NcclDist, AllGatherVUnevenWithZeros) {
  NCCL_WORLD_OR_SKIP(w);
  std::vector<int64_t> counts(w.size());
  for (int r = 0; r < w.size(); ++r) counts[r] = (3 * r) % 4;  // 0, 3, 2, 1, 0, 3, ...
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  for (DType t : {DType::f32, DType::bf16, DType::i32, DType::u8}) {
    Tensor in = on_gpu(w, filled(t, counts[w.rank()], [&](int64_t i) { return input(t, w.rank(), i); }));
    Tensor out = Tensor::zeros({total}, t, Device::cuda(w.device()));
    w.all_gather_v(in, out, counts);
    std::vector<double> want;
    for (int r = 0; r < w.size(); ++r)
      for (int64_t i = 0; i < counts[r]; ++i) want.push_back(input(t, r, i));
    EXPECT_EQ(host_values(out), want) << dtype_name(t);
  }
}

TEST(NcclDist, AllToAllVUnevenWithOffsets) {
  NCCL_WORLD_OR_SKIP(w);
  const int me = w.rank(), n = w.size();
  auto count = [](int from, int to) -> int64_t { return (from + 2 * to) % 3; };  // zeros included
  // Send blocks in peer order with a gap between them; receive blocks in reverse peer order.
  std::vector<int64_t> sc(n), so(n), rc(n), ro(n);
  int64_t s_off = 0, r_off = 0;
  for (int p = 0; p < n; ++p) {
    sc[p] = count(me, p), so[p] = s_off, s_off += sc[p] + 1;
  }
  for (int p = n - 1; p >= 0; --p) {
    rc[p] = count(p, me), ro[p] = r_off, r_off += rc[p];
  }
  for (DType t : {DType::f32, DType::i64}) {
    auto tag = [](int from, int to, int64_t k) { return static_cast<double>(100 * from + 10 * to + k); };
    Tensor in_h = filled(t, s_off, [](int64_t) { return -1.0; });
    for (int p = 0; p < n; ++p)
      for (int64_t k = 0; k < sc[p]; ++k) {
        Tensor one = filled(t, 1, [&](int64_t) { return tag(me, p, k); });
        std::memcpy(static_cast<char*>(in_h.data()) + (so[p] + k) * dtype_size(t), one.data(), dtype_size(t));
      }
    Tensor in = on_gpu(w, in_h);
    Tensor out = on_gpu(w, filled(t, r_off + 2, [](int64_t) { return -7.0; }));  // 2 trailing untouched
    w.all_to_all_v(in, sc, so, out, rc, ro);
    std::vector<double> want(static_cast<size_t>(r_off + 2), -7.0);
    for (int p = 0; p < n; ++p)
      for (int64_t k = 0; k < rc[p]; ++k) want[ro[p] + k] = tag(p, me, k);
    EXPECT_EQ(host_values(out), want) << dtype_name(t);
  }
}

TEST(NcclDist, BroadcastFromLastRank) {
  NCCL_WORLD_OR_SKIP(w);
  const int root = w.size() - 1;
  for (DType t : {DType::f32, DType::bf16, DType::i64, DType::u8}) {
    Tensor x = on_gpu(w, filled(t, 9, [&](int64_t i) { return input(t, w.rank(), i); }));
    w.broadcast(x, root);
    std::vector<double> want;
    for (int64_t i = 0; i < 9; ++i) want.push_back(input(t, root, i));
    EXPECT_EQ(host_values(x), want) << dtype_name(t);
  }
}

TEST(NcclDist, SendRecvRing) {
  NCCL_WORLD_OR_SKIP(w);
  const int next = (w.rank() + 1) % w.size(), prev = (w.rank() + w.size() - 1) % w.size();
  for (DType t : {DType::f32, DType::bf16, DType::i32}) {
    Tensor mine = on_gpu(w, filled(t, 6, [&](int64_t i) { return input(t, w.rank(), i); }));
    Tensor got = Tensor::zeros({6}, t, Device::cuda(w.device()));
    if (w.rank() % 2 == 0) {  // even ranks send first, odd ranks receive first (world sizes are even)
      w.send(mine, next, 7);
      w.recv(got, prev, 7);
    } else {
      w.recv(got, prev, 7);
      w.send(mine, next, 7);
    }
    std::vector<double> want;
    for (int64_t i = 0; i < 6; ++i) want.push_back(input(t, prev, i));
    EXPECT_EQ(host_values(got), want) << dtype_name(t);
  }
}

TEST(NcclDist, AsyncSendRecvBothDirectionsAtOnce) {
  // The pipeline's pattern: post sends and receives to both neighbours, then wait (the posts are
  // launched as one NCCL group on the first wait, so the order of the waits does not matter).
  NCCL_WORLD_OR_SKIP(w);
  const int next = (w.rank() + 1) % w.size(), prev = (w.rank() + w.size() - 1) % w.size();
  const int64_t n = 1 << 16;
  const Device gpu = Device::cuda(w.device());
  Tensor mine = on_gpu(w, filled(DType::f32, n, [&](int64_t i) { return input(DType::f32, w.rank(), i); }));
  Tensor from_prev = Tensor::zeros({n}, DType::f32, gpu), from_next = Tensor::zeros({n}, DType::f32, gpu);
  std::vector<std::unique_ptr<Request>> reqs;
  reqs.push_back(w.send_async(mine, next, 3));
  reqs.push_back(w.send_async(mine, prev, 4));
  reqs.push_back(w.recv_async(from_prev, prev, 3));
  reqs.push_back(w.recv_async(from_next, next, 4));
  for (auto it = reqs.rbegin(); it != reqs.rend(); ++it) (*it)->wait();
  const std::vector<double> p = host_values(from_prev), q = host_values(from_next);
  for (int64_t i = 0; i < n; i += 997) {
    EXPECT_EQ(p[i], input(DType::f32, prev, i));
    EXPECT_EQ(q[i], input(DType::f32, next, i));
  }
  // Posts still pending when a collective is called are launched first (program order).
  Tensor got = Tensor::zeros({n}, DType::f32, gpu);
  auto s = w.send_async(mine, next, 0);
  auto r = w.recv_async(got, prev, 0);
  w.barrier();
  r.reset();  // waits in the destructor
  s->wait();
  EXPECT_EQ(host_values(got)[5], input(DType::f32, prev, 5));
}

TEST(NcclDist, SplitEvenOddReversed) {
  NCCL_WORLD_OR_SKIP(w);
  const int color = w.rank() % 2;
  auto sub = w.split(color, -w.rank(), "parity");  // key reverses the order
  EXPECT_EQ(sub->name(), "parity");
  std::vector<int> members;
  for (int r = w.size() - 1; r >= 0; --r)
    if (r % 2 == color) members.push_back(r);
  EXPECT_EQ(sub->size(), static_cast<int>(members.size()));
  EXPECT_EQ(members[sub->rank()], w.rank());
  const Device gpu = Device::cuda(w.device());
  Tensor me = on_gpu(w, filled(DType::i32, 1, [&](int64_t) { return w.rank(); }));
  Tensor all = Tensor::zeros({sub->size()}, DType::i32, gpu);
  sub->all_gather(me, all);
  EXPECT_EQ(host_values(all), std::vector<double>(members.begin(), members.end()));

  auto pair = w.split(w.rank() / 2, w.rank(), "pair");
  EXPECT_EQ(pair->size(), 2);
  EXPECT_EQ(pair->rank(), w.rank() % 2);
  Tensor x = on_gpu(w, filled(DType::f32, 4, [&](int64_t i) { return w.rank() * 10 + i; }));
  pair->broadcast(x, 1);
  const int src = (w.rank() / 2) * 2 + 1;
  EXPECT_EQ(host_values(x), (std::vector<double>{src * 10.0, src * 10.0 + 1, src * 10.0 + 2, src * 10.0 + 3}));
}

TEST(NcclDist, AsyncVariants) {
  NCCL_WORLD_OR_SKIP(w);
  const int64_t n = 7;
  const Device gpu = Device::cuda(w.device());
  for (DType t : {DType::f32, DType::bf16}) {
    Tensor a = on_gpu(w, filled(t, n, [&](int64_t i) { return input(t, w.rank(), i); }));
    Tensor rs_in = on_gpu(w, filled(t, w.size() * n, [&](int64_t i) { return input(t, w.rank(), i); }));
    Tensor rs_out = Tensor::zeros({n}, t, gpu);
    Tensor g_in = on_gpu(w, filled(t, n, [&](int64_t i) { return input(t, w.rank(), i + 1); }));
    Tensor g_out = Tensor::zeros({w.size() * n}, t, gpu);
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
    EXPECT_EQ(host_values(a), max) << dtype_name(t);
    EXPECT_EQ(host_values(rs_out), rs) << dtype_name(t);
    EXPECT_EQ(host_values(g_out), g) << dtype_name(t);
  }
  // A request dropped without wait() completes in its destructor.
  Tensor s = on_gpu(w, filled(DType::i64, 3, [&](int64_t i) { return w.rank() + i; }));
  { auto r = w.all_reduce_async(s); }
  const double ranks = w.size() * (w.size() - 1) / 2.0;
  EXPECT_EQ(host_values(s), (std::vector<double>{ranks, ranks + w.size(), ranks + 2 * w.size()}));
}

TEST(NcclDist, LocalErrorsNameCollectiveGroupAndDevice) {
  NCCL_WORLD_OR_SKIP(w);
  Tensor host = Tensor::zeros({4});
  std::string e = error_of([&] { w.all_reduce(host); });
  EXPECT_NE(e.find("all_reduce on group 'nccl_world': x f32(4) cpu is a host tensor"), std::string::npos) << e;
  TensorView elsewhere{host.data(), DType::f32, Shape{4}, Device::cuda(w.device() + 1)};  // never touched
  e = error_of([&] { w.broadcast(elsewhere, 0); });
  EXPECT_NE(e.find(fmt::format("is not on the communicator's device cuda:{}", w.device())), std::string::npos) << e;
  Tensor x = Tensor::zeros({4}, DType::f32, Device::cuda(w.device()));
  e = error_of([&] { w.all_gather(x, x); });
  EXPECT_NE(e.find("all_gather on group 'nccl_world' of size"), std::string::npos) << e;
  Tensor b = Tensor::zeros({4}, DType::boolean, Device::cuda(w.device()));
  e = error_of([&] { w.all_reduce_async(b); });
  EXPECT_NE(e.find("all_reduce_async on group 'nccl_world': cannot reduce"), std::string::npos) << e;
  std::vector<int64_t> zeros(w.size(), 0), sc = zeros;
  sc[w.rank()] = 1;
  e = error_of([&] { w.all_to_all_v(x, sc, zeros, x, zeros, zeros); });
  EXPECT_NE(e.find("sends 1 elements to itself but expects to receive 0"), std::string::npos) << e;
  e = error_of([&] { w.split(-1, 0, "bad"); });
  EXPECT_NE(e.find("color -1 must be >= 0"), std::string::npos) << e;
  w.barrier();
}

}  // namespace
}  // namespace foundry

#endif  // FOUNDRY_HAVE_NCCL
