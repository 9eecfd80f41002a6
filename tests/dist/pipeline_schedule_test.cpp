// Pipeline parallelism (train/pipeline_schedule.h) over MPI: the world is split into pipeline
// groups of P ranks (the whole world, or groups of 2 / 4 with the other groups independent
// replicas on their own data), each rank holding V chunks of the toy chain of tests/pipeline_toy.h
// (S = P V dense tanh stages, chunk v of rank r = global stage v P + r). With 1F1B (V = 1) and the
// interleaved schedule (V = 2, 3) the loss (summed over the pp group: only the last stage holds it)
// and every stage's weight gradient equal a one-process sequential run of the whole chain computed
// on every rank, exactly (fp32, tolerance 0: the per-stage math is the same function and every
// stage accumulates its microbatches in the same order, so any difference is a schedule or
// hand-over bug). Microbatches have different row counts (1 to 4), so every hand-over also checks
// the per-microbatch shapes; each rank never holds more than warmup + 1 microbatches in flight.
#include <gtest/gtest.h>

#include "foundry/comm/communicator.h"
#include "pipeline_toy.h"
#include "testing.h"

namespace foundry {
namespace {

struct Case {
  int P;  // ranks per pipeline group; 0 = the whole world
  int V;  // chunks per rank
  int M;  // microbatches; <= 0: (-M) * P
  bool forward_only = false;
};

// Runs the case on this rank's pipeline group and compares with the sequential chain; false when
// the world does not split into groups of P.
bool run_case(Case c) {
  Communicator& w = world();
  const int P = c.P == 0 ? w.size() : c.P;
  if (P > w.size() || w.size() % P != 0) return false;
  const int M = c.M > 0 ? c.M : -c.M * P, V = c.V, S = P * V;
  const int replica = w.rank() / P;
  const std::unique_ptr<Communicator> pp = w.split(replica, w.rank() % P, "pp");
  EXPECT_EQ(pp->size(), P);
  const int r = pp->rank();
  SCOPED_TRACE(::testing::Message() << "P " << P << " V " << V << " M " << M << " pp rank " << r << " replica "
                                    << replica);

  testing::InFlight in_flight;
  std::vector<std::unique_ptr<testing::ToyStage>> stages;
  std::vector<PipelineChunk*> chunks;
  for (int v = 0; v < V; ++v) {
    stages.push_back(std::make_unique<testing::ToyStage>(v * P + r, S, replica, &in_flight));
    chunks.push_back(stages.back().get());
  }
  run_pipeline(*pp, chunks,
               {.num_microbatches = M, .activation_shape = testing::toy_shape, .forward_only = c.forward_only});

  const testing::ToyReference ref = testing::toy_sequential(S, M, replica);
  double loss = 0;
  for (const auto& st : stages) loss += st->loss;  // nonzero on the last stage only
  EXPECT_EQ(pp->all_reduce_sum(loss), ref.loss);
  if (c.forward_only) {  // no backward ran: nothing accumulated, every microbatch's state still saved
    for (const auto& st : stages) {
      EXPECT_TRUE(testing::allclose(st->dw, Tensor::zeros({testing::kToyH, testing::kToyH}), 0, 0));
      EXPECT_EQ(st->saved.size(), static_cast<size_t>(M));
    }
    w.barrier();
    return true;
  }
  for (int v = 0; v < V; ++v) {
    EXPECT_TRUE(testing::allclose(stages[v]->dw, ref.dw[v * P + r], 0, 0)) << "global stage " << v * P + r;
    EXPECT_TRUE(stages[v]->saved.empty()) << "global stage " << v * P + r;
  }
  EXPECT_EQ(in_flight.now, 0);
  EXPECT_LE(in_flight.peak, pipeline_warmup(P, r, V, M) + 1);
  w.barrier();
  return true;
}

TEST(PipelineParallel, OneFOneBWholeWorld) {
  run_case({.P = 0, .V = 1, .M = 1});      // fewer microbatches than stages
  run_case({.P = 0, .V = 1, .M = 7});      // not a multiple of P
  run_case({.P = 0, .V = 1, .M = -2});     // 2 P
}

TEST(PipelineParallel, OneFOneBGroupsOfTwoAndFour) {
  EXPECT_TRUE(run_case({.P = 2, .V = 1, .M = 5}));
  if (!run_case({.P = 4, .V = 1, .M = 6})) GTEST_SKIP() << "groups of 4 need a world of 4 or 8 ranks";
}

TEST(PipelineParallel, InterleavedWholeWorld) {
  run_case({.P = 0, .V = 2, .M = -1});  // M == P: all warmup
  run_case({.P = 0, .V = 2, .M = -2});
  run_case({.P = 0, .V = 3, .M = -3});
}

TEST(PipelineParallel, InterleavedGroupsOfTwoAndFour) {
  EXPECT_TRUE(run_case({.P = 2, .V = 3, .M = 6}));
  if (!run_case({.P = 4, .V = 2, .M = 8})) GTEST_SKIP() << "groups of 4 need a world of 4 or 8 ranks";
}

// Evaluation (Megatron's forward_only): the same loss, no backward.
TEST(PipelineParallel, ForwardOnly) {
  run_case({.P = 0, .V = 1, .M = 3, .forward_only = true});
  run_case({.P = 0, .V = 2, .M = -2, .forward_only = true});
  EXPECT_TRUE(run_case({.P = 2, .V = 3, .M = 4, .forward_only = true}));
}

// Activations of 16K-32K floats (64-128 KiB: above MPI's eager limits, 4 KiB in shared memory and
// 64 KiB over TCP, so a send completes only once its receive is posted): the schedule must still
// not deadlock. Stage s adds 1 (y = x + 1, stage 0 reading x = m), the last stage checks
// y = m + S; backward passes the gradient through unchanged from dy = m on the last stage, stage 0
// checks dx = m.
struct AddOne final : PipelineChunk {
  AddOne(int s_, int S_) : s(s_), S(S_) {}
  static Shape shape(int m) { return {1 + m % 2, int64_t{1} << 14}; }
  static bool all_equal(const Tensor& t, float v) {
    for (int64_t i = 0; i < t.numel(); ++i)
      if (t.ptr<float>()[i] != v) return false;
    return true;
  }
  Tensor forward(int m, const Tensor& input) override {
    Tensor y = s == 0 ? Tensor::full(shape(m), static_cast<float>(m)) : input.clone();
    for (int64_t i = 0; i < y.numel(); ++i) y.ptr<float>()[i] += 1;
    if (s < S - 1) return y;
    EXPECT_TRUE(all_equal(y, static_cast<float>(m + S))) << "microbatch " << m;
    ++checked;
    return {};
  }
  Tensor backward(int m, const Tensor& doutput) override {
    const Tensor dx = s == S - 1 ? Tensor::full(shape(m), static_cast<float>(m)) : doutput.clone();
    if (s == 0) {
      EXPECT_TRUE(all_equal(dx, static_cast<float>(m))) << "microbatch " << m;
      ++checked;
    }
    return dx;
  }
  int s, S, checked = 0;
};

TEST(PipelineParallel, LargeActivationsDoNotDeadlock) {
  Communicator& w = world();
  const int P = w.size();
  for (int V : {1, 2}) {
    const int M = 2 * P;
    std::vector<AddOne> stages;
    for (int v = 0; v < V; ++v) stages.emplace_back(v * P + w.rank(), V * P);
    std::vector<PipelineChunk*> chunks;
    for (AddOne& st : stages) chunks.push_back(&st);
    run_pipeline(w, chunks, {.num_microbatches = M, .activation_shape = AddOne::shape});
    // Stage 0 (rank 0) and the last stage (rank P - 1) each checked every microbatch.
    int checked = 0;
    for (const AddOne& st : stages) checked += st.checked;
    EXPECT_EQ(w.all_reduce_sum(checked), 2 * M) << "V " << V;
  }
  w.barrier();
}

// Megatron's condition for the interleaved schedule, checked on every rank before any message.
TEST(PipelineParallel, InterleavedNeedsMicrobatchesDivisibleByTheGroup) {
  Communicator& w = world();
  const int P = w.size();
  testing::InFlight in_flight;
  testing::ToyStage a(w.rank(), 2 * P, 0, &in_flight), b(P + w.rank(), 2 * P, 0, &in_flight);
  std::vector<PipelineChunk*> chunks{&a, &b};
  const PipelineConfig cfg{.num_microbatches = P + 1, .activation_shape = testing::toy_shape};
  const std::string e = testing::error_of([&] { run_pipeline(w, chunks, cfg); });
  EXPECT_NE(e.find("is not divisible by pipeline-model-parallel size"), std::string::npos) << e;
  w.barrier();
}

}  // namespace
}  // namespace foundry
