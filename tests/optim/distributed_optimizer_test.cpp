// DistributedAdamW (ZeRO-1) in one process: over the self communicator it is AdamW +
// clip_grad_norm bit for bit (weight-decay mask, clipping, five steps, state gather/scatter);
// over 2..8 simulated ranks (threads sharing memory, collectives summing in rank order) every rank
// matches the replicated AdamW on the summed gradient, padded shards included. The multi-process
// version of the same checks is tests/dist/distributed_optimizer_test.cpp.
#include "foundry/optim/distributed_optimizer.h"

#include <barrier>
#include <cstring>
#include <thread>

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
