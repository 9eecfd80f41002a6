// DistributedAdamW (ZeRO-1) in one process: over the self communicator it is AdamW +
// clip_grad_norm bit for bit (weight-decay mask, clipping, five steps, state gather/scatter);
// over 2..8 simulated ranks (threads sharing memory, collectives summing in rank order) every rank
// matches the replicated AdamW on the summed gradient, padded shards included. The multi-process
// version of the same checks is tests/dist/distributed_optimizer_test.cpp. The range optimizers
// (dense over all ranks, experts over blocks of ranks) match the replicated AdamW fed the dense
// gradients summed over all ranks and the expert gradients summed over the block.
#include "foundry/optim/distributed_optimizer.h"

#include <barrier>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "optim/distributed_optimizer_check.h"
#include "testing.h"

namespace foundry {
namespace {

// Ranks as threads of one process: each collective publishes this rank's pointers, waits for all,
// reads the others' buffers, and waits again before anyone may reuse its buffers.
struct ThreadGroup {
  explicit ThreadGroup(int n) : size(n), sync(n), ptr(static_cast<size_t>(n)) {}
  int size;
  std::barrier<> sync;
  std::vector<const void*> ptr;
};

class ThreadComm final : public Communicator {
 public:
  ThreadComm(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size; }
  std::string name() const override { return "threads"; }

  void all_reduce(TensorView x, ReduceOp op) override {
    FOUNDRY_CHECK(op == ReduceOp::sum && x.dtype == DType::f32, "ThreadComm: f32 sum only");
    std::vector<float> sum = summed(x.data, 0, x.numel());
    std::memcpy(x.data, sum.data(), sum.size() * 4);
  }
  void reduce_scatter(TensorView in, TensorView out) override {
    FOUNDRY_CHECK(in.dtype == DType::f32 && in.numel() == out.numel() * size(), "ThreadComm: reduce_scatter shapes");
    std::vector<float> sum = summed(in.data, rank_ * out.numel(), out.numel());
    std::memcpy(out.data, sum.data(), sum.size() * 4);
  }
  void all_gather(TensorView in, TensorView out) override {
    FOUNDRY_CHECK(out.nbytes() == in.nbytes() * size(), "ThreadComm: all_gather shapes");
    publish(in.data);
    for (int r = 0; r < size(); ++r)
      std::memcpy(static_cast<char*>(out.data) + r * in.nbytes(), g_.ptr[static_cast<size_t>(r)],
                  static_cast<size_t>(in.nbytes()));
    g_.sync.arrive_and_wait();
  }
  [[noreturn]] static void no() { FOUNDRY_FAIL("ThreadComm: not simulated"); }
  void reduce_scatter_v(TensorView, TensorView, std::span<const int64_t>) override { no(); }
  void all_gather_v(TensorView, TensorView, std::span<const int64_t>) override { no(); }
  void all_to_all_v(TensorView, std::span<const int64_t>, std::span<const int64_t>, TensorView,
                    std::span<const int64_t>, std::span<const int64_t>) override { no(); }
  void broadcast(TensorView, int) override { no(); }
  void send(TensorView, int, int) override { no(); }
  void recv(TensorView, int, int) override { no(); }
  void barrier() override { g_.sync.arrive_and_wait(); }
  std::unique_ptr<Request> all_reduce_async(TensorView, ReduceOp) override { no(); }
  std::unique_ptr<Request> reduce_scatter_async(TensorView, TensorView) override { no(); }
  std::unique_ptr<Request> all_gather_async(TensorView, TensorView) override { no(); }
  std::unique_ptr<Request> send_async(TensorView, int, int) override { no(); }
  std::unique_ptr<Request> recv_async(TensorView, int, int) override { no(); }
  std::unique_ptr<Communicator> split(int, int, const std::string&) override { no(); }

 private:
  void publish(const void* p) {
    g_.ptr[static_cast<size_t>(rank_)] = p;
    g_.sync.arrive_and_wait();
  }
  // Elements [begin, begin + n) summed over ranks in rank order.
  std::vector<float> summed(const void* mine, int64_t begin, int64_t n) {
    publish(mine);
    std::vector<float> s(static_cast<size_t>(n), 0.f);
    for (int r = 0; r < size(); ++r) {
      const float* x = static_cast<const float*>(g_.ptr[static_cast<size_t>(r)]) + begin;
      for (int64_t i = 0; i < n; ++i) s[static_cast<size_t>(i)] += x[i];
    }
    g_.sync.arrive_and_wait();
    return s;
  }
  ThreadGroup& g_;
  int rank_;
};

void run_threads(int n, bool tiny) {
  ThreadGroup g(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&g, r, tiny] {
      ThreadComm c(g, r);
      zero_test::check_against_adamw(c, tiny);
    });
  for (auto& t : threads) t.join();
}

void run_threads_experts(int n) {
  ThreadGroup g(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&g, r] {
      ThreadComm c(g, r);
      zero_test::check_against_adamw(c, /*tiny=*/false, /*experts=*/true);
    });
  for (auto& t : threads) t.join();
}

TEST(DistributedAdamW, SelfCommunicatorEqualsAdamWAndClipGradNorm) {
  auto self = make_self_communicator("dp");
  zero_test::check_against_adamw(*self, /*tiny=*/false);
  zero_test::check_against_adamw(*self, /*tiny=*/true);
}

TEST(DistributedAdamW, SelfShardIsTheWholeArenaAndHonoursTheDecayMask) {
  Param w, norm;
  ParamTable t;
  t.add(w, {.name = "w", .shape = {3}, .init = Init::normal(1.f)});
  t.add(norm, {.name = "norm", .shape = {2}, .init = Init::ones(), .weight_decay = false});
  t.allocate(2);
  auto self = make_self_communicator("dp");
  DistributedAdamW opt(t, {.lr = 0.1f, .weight_decay = 0.5f}, *self);
  EXPECT_EQ(opt.numel(), 32);  // two 64-byte aligned parameters
  EXPECT_EQ(opt.shard_size(), 32);
  EXPECT_EQ(opt.shard_begin(), 0);
  // Zero gradients: only decoupled decay moves parameters, and only where decay applies.
  const auto w0 = w.value.to_vector();
  EXPECT_EQ(opt.reduce_gradients(1.0).norm, 0.0);
  opt.step(0.1f);
  const auto w1 = w.value.to_vector(), n1 = norm.value.to_vector();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(w1[i], w0[i] * static_cast<float>(1.0 - 0.1 * 0.5));
  EXPECT_EQ(n1[0], 1.f);
  EXPECT_EQ(n1[1], 1.f);
}

TEST(DistributedAdamW, ThreadRanksEqualAdamWOnTheSummedGradient) {
  for (int n : {2, 3, 4, 8}) {
    run_threads(n, /*tiny=*/false);  // N = 128: exact shards for 2, 4, 8; padded for 3
    run_threads(n, /*tiny=*/true);   // N = 48: padded; with 8 ranks, ranks 3..7 own only padding
  }
}

// Dense over all n thread ranks, experts over blocks of e consecutive ranks (their own thread groups).
void run_kinds(int n, int e, bool experts) {
  ThreadGroup world(n);
  std::deque<ThreadGroup> blocks;
  for (int b = 0; b < n / e; ++b) blocks.emplace_back(e);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      ThreadComm dp(world, r), edp(blocks[static_cast<size_t>(r / e)], r % e);
      zero_test::check_kinds(dp, edp, experts);
    });
  for (auto& t : threads) t.join();
}

TEST(DistributedAdamW, SelfRangeOptimizersEqualAdamW) {
  auto dp = make_self_communicator("dp"), edp = make_self_communicator("expt_dp");
  zero_test::check_kinds(*dp, *edp, /*experts=*/true);
  zero_test::check_kinds(*dp, *edp, /*experts=*/false);  // empty expert range: a no-op optimizer
  zero_test::check_against_adamw(*dp, /*tiny=*/false, /*experts=*/true);  // whole arena, both kinds
}

TEST(DistributedAdamW, ThreadRanksDenseAndExpertRangesEqualAdamW) {
  // (world, expert block): expert gradients summed over blocks of 2 or 4 ranks, or of 1.
  for (auto [n, e] : {std::pair{2, 2}, {2, 1}, {4, 2}, {8, 2}, {8, 4}}) run_kinds(n, e, /*experts=*/true);
  run_kinds(4, 2, /*experts=*/false);
  for (int n : {2, 8}) run_threads_experts(n);
}

TEST(DistributedAdamW, RangeConstructorSplitsTheArena) {
  zero_test::Model m(/*tiny=*/false, /*experts=*/true);
  auto self = make_self_communicator("dp");
  DistributedAdamW whole(m.t, {}, *self), dense(m.t, ParamTable::Kind::dense, {}, *self),
      expert(m.t, ParamTable::Kind::expert, {}, *self);
  EXPECT_EQ(whole.numel(), 176);
  EXPECT_EQ(dense.numel(), 128);
  EXPECT_EQ(expert.numel(), 48);
  EXPECT_EQ(expert.range_begin(), 128);
  EXPECT_EQ(expert.shard_size(), 48);
  // The master shards are the range's values.
  const float* values = m.t.value_buffer().ptr<float>();
  EXPECT_TRUE(std::equal(values + 128, values + 176, expert.master().ptr<float>()));
  EXPECT_TRUE(std::equal(values, values + 128, dense.master().ptr<float>()));
  // shard_sum_squares before any reduction: the (zero) gradient shard.
  EXPECT_EQ(expert.shard_sum_squares([](int) { return true; }), 0.0);
  // scatter_state checks only the range's parameters: the dense entries may be missing.
  std::vector<Tensor> a(static_cast<size_t>(m.t.size())), b(static_cast<size_t>(m.t.size()));
  expert.gather_state(a, b);
  EXPECT_NO_THROW(expert.scatter_state(a, b));
  EXPECT_THROW(dense.scatter_state(a, b), Error);
}

TEST(DistributedAdamW, ScatterStateChecksShapes) {
  zero_test::Model m(/*tiny=*/false);
  auto self = make_self_communicator("dp");
  DistributedAdamW opt(m.t, {}, *self);
  std::vector<Tensor> a, b;
  opt.gather_state(a, b);
  a[2] = Tensor::zeros({4});
  EXPECT_THROW(opt.scatter_state(a, b), Error);
  a.pop_back();
  EXPECT_THROW(opt.scatter_state(a, b), Error);
}

}  // namespace
}  // namespace foundry
