// Pipeline schedules (train/pipeline_schedule.h) in one process:
//  - pipeline_order equals the orders written out by hand from Megatron-Core's
//    forward_backward_pipelining_without_interleaving (P = 4, M = 8) and
//    forward_backward_pipelining_with_interleaving (P = 2, V = 2, M = 4; and M == P: all warmup);
//  - over a grid of (P, V, M): every (chunk, microbatch) has one forward and one backward, forward
//    first; at most warmup + 1 microbatches are in flight; and the P ranks' orders together run
//    without deadlock (a simulation in which an op runs once the op it depends on has run on its
//    neighbour: forward of stage s needs forward of s - 1, backward of s needs backward of s + 1);
//  - forward_only: the forwards in the same order, no backward;
//  - P = 1 with 1 and 3 chunks (all hand-overs local) equals the sequential chain bit for bit;
//  - errors: no chunks, M < 1, M % P with V > 1, wrong shapes, a last stage returning a tensor.
// The multi-rank runs are in tests/dist/pipeline_schedule_test.cpp.
#include "foundry/train/pipeline_schedule.h"

#include <gtest/gtest.h>

#include <set>

#include "pipeline_toy.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::error_of;

std::string order_str(int P, int r, int V, int M, bool forward_only = false) {
  std::string s;
  for (const PipelineOp& op : pipeline_order(P, r, V, M, forward_only)) {
    if (!s.empty()) s += ' ';
    s += op.str();
  }
  return s;
}

TEST(PipelineOrder, OneFOneBMatchesMegatronForFourStagesEightMicrobatches) {
  // Warmup min(P - r - 1, M) forwards, then forward / backward pairs, then the cooldown backwards.
  EXPECT_EQ(order_str(4, 0, 1, 8),
            "F0.0 F0.1 F0.2 F0.3 B0.0 F0.4 B0.1 F0.5 B0.2 F0.6 B0.3 F0.7 B0.4 B0.5 B0.6 B0.7");
  EXPECT_EQ(order_str(4, 1, 1, 8),
            "F0.0 F0.1 F0.2 B0.0 F0.3 B0.1 F0.4 B0.2 F0.5 B0.3 F0.6 B0.4 F0.7 B0.5 B0.6 B0.7");
  EXPECT_EQ(order_str(4, 2, 1, 8),
            "F0.0 F0.1 B0.0 F0.2 B0.1 F0.3 B0.2 F0.4 B0.3 F0.5 B0.4 F0.6 B0.5 F0.7 B0.6 B0.7");
  EXPECT_EQ(order_str(4, 3, 1, 8),
            "F0.0 B0.0 F0.1 B0.1 F0.2 B0.2 F0.3 B0.3 F0.4 B0.4 F0.5 B0.5 F0.6 B0.6 F0.7 B0.7");
  // Fewer microbatches than stages: the warmup is capped at M.
  EXPECT_EQ(order_str(4, 0, 1, 2), "F0.0 F0.1 B0.0 B0.1");
  EXPECT_EQ(pipeline_warmup(4, 0, 1, 2), 2);
}

TEST(PipelineOrder, InterleavedMatchesMegatronForTwoRanksTwoChunks) {
  // P = 2, V = 2, M = 4: forward k runs chunk (k % 4) / 2 on microbatch (k / 4) * 2 + k % 2, i.e.
  // F0.0 F0.1 F1.0 F1.1 F0.2 F0.3 F1.2 F1.3; backward k the reversed chunk: B1.0 B1.1 B0.0 B0.1
  // B1.2 B1.3 B0.2 B0.3. Warmup (P - r - 1) * 2 + (V - 1) * P: 4 on rank 0, 2 on rank 1.
  EXPECT_EQ(pipeline_warmup(2, 0, 2, 4), 4);
  EXPECT_EQ(pipeline_warmup(2, 1, 2, 4), 2);
  EXPECT_EQ(order_str(2, 0, 2, 4),
            "F0.0 F0.1 F1.0 F1.1 F0.2 B1.0 F0.3 B1.1 F1.2 B0.0 F1.3 B0.1 B1.2 B1.3 B0.2 B0.3");
  EXPECT_EQ(order_str(2, 1, 2, 4),
            "F0.0 F0.1 F1.0 B1.0 F1.1 B1.1 F0.2 B0.0 F0.3 B0.1 F1.2 B1.2 F1.3 B1.3 B0.2 B0.3");
  // M == P: Megatron runs every forward, then every backward.
  EXPECT_EQ(order_str(2, 1, 2, 2), "F0.0 F0.1 F1.0 F1.1 B1.0 B1.1 B0.0 B0.1");
  EXPECT_EQ(pipeline_warmup(2, 1, 2, 2), 4);
}

TEST(PipelineOrder, ForwardOnlyRunsTheForwardsInScheduleOrder) {
  EXPECT_EQ(order_str(4, 2, 1, 3, true), "F0.0 F0.1 F0.2");
  EXPECT_EQ(order_str(2, 0, 2, 4, true), "F0.0 F0.1 F1.0 F1.1 F0.2 F0.3 F1.2 F1.3");
  EXPECT_EQ(order_str(2, 1, 2, 4, true), "F0.0 F0.1 F1.0 F1.1 F0.2 F0.3 F1.2 F1.3");
}

struct Grid {
  int P, V, M;
};

std::vector<Grid> grid() {
  std::vector<Grid> g;
  for (int P = 1; P <= 5; ++P)
    for (int V = 1; V <= 3; ++V)
      for (int M = 1; M <= 3 * P + 1; ++M)
        if (V == 1 || M % P == 0) g.push_back({P, V, M});
  return g;
}

TEST(PipelineOrder, EveryOpOnceForwardFirstAndAtMostWarmupPlusOneInFlight) {
  for (const Grid& c : grid())
    for (int r = 0; r < c.P; ++r) {
      const auto order = pipeline_order(c.P, r, c.V, c.M);
      const int W = pipeline_warmup(c.P, r, c.V, c.M);
      SCOPED_TRACE(::testing::Message() << "P " << c.P << " rank " << r << " V " << c.V << " M " << c.M);
      ASSERT_EQ(order.size(), 2u * c.V * c.M);
      std::set<std::pair<int, int>> forwarded, backwarded;
      int in_flight = 0, peak = 0;
      for (const PipelineOp& op : order) {
        ASSERT_TRUE(op.chunk >= 0 && op.chunk < c.V && op.microbatch >= 0 && op.microbatch < c.M) << op.str();
        const std::pair<int, int> key{op.chunk, op.microbatch};
        if (op.kind == PipelineOp::Kind::forward) {
          EXPECT_TRUE(forwarded.insert(key).second) << "second " << op.str();
          peak = std::max(peak, ++in_flight);
        } else {
          EXPECT_TRUE(forwarded.count(key)) << op.str() << " before its forward";
          EXPECT_TRUE(backwarded.insert(key).second) << "second " << op.str();
          --in_flight;
        }
      }
      EXPECT_EQ(backwarded.size(), static_cast<size_t>(c.V * c.M));
      EXPECT_LE(peak, std::min(W + 1, c.V * c.M));
    }
}

// Runs the P ranks' orders together: an op runs once the op it needs has run on its neighbour.
void expect_no_deadlock(const Grid& c, bool forward_only) {
  const int S = c.P * c.V;
  SCOPED_TRACE(::testing::Message() << "P " << c.P << " V " << c.V << " M " << c.M << " fwd only " << forward_only);
  std::vector<std::vector<PipelineOp>> orders;
  for (int r = 0; r < c.P; ++r) orders.push_back(pipeline_order(c.P, r, c.V, c.M, forward_only));
  std::vector<size_t> next(c.P, 0);
  // done[kind][s][m]
  std::vector<std::vector<std::vector<char>>> done(2, std::vector<std::vector<char>>(S, std::vector<char>(c.M, 0)));
  bool progress = true;
  size_t ran = 0;
  while (progress) {
    progress = false;
    for (int r = 0; r < c.P; ++r) {
      if (next[r] == orders[r].size()) continue;
      const PipelineOp& op = orders[r][next[r]];
      const int s = op.chunk * c.P + r, m = op.microbatch;
      const bool fwd = op.kind == PipelineOp::Kind::forward;
      const bool ready = fwd ? (s == 0 || done[0][s - 1][m]) : (done[0][s][m] && (s == S - 1 || done[1][s + 1][m]));
      if (!ready) continue;
      done[fwd ? 0 : 1][s][m] = 1;
      ++next[r];
      ++ran;
      progress = true;
    }
  }
  EXPECT_EQ(ran, (forward_only ? 1u : 2u) * S * c.M) << "deadlock";
}

TEST(PipelineOrder, RanksTogetherRunWithoutDeadlock) {
  for (const bool forward_only : {false, true})
    for (const Grid& c : grid()) expect_no_deadlock(c, forward_only);
}

// P = 1: every hand-over is local; the result equals the sequential chain exactly.
void run_local(int V, int M, bool forward_only = false) {
  std::unique_ptr<Communicator> self = make_self_communicator("pp");
  testing::InFlight in_flight;
  std::vector<std::unique_ptr<testing::ToyStage>> stages;
  std::vector<PipelineChunk*> chunks;
  for (int v = 0; v < V; ++v) {
    stages.push_back(std::make_unique<testing::ToyStage>(v, V, 0, &in_flight));
    chunks.push_back(stages.back().get());
  }
  run_pipeline(*self, chunks,
               {.num_microbatches = M, .activation_shape = testing::toy_shape, .forward_only = forward_only});
  const testing::ToyReference ref = testing::toy_sequential(V, M, 0);
  EXPECT_EQ(stages.back()->loss, ref.loss);
  if (forward_only) {
    for (int v = 0; v < V; ++v)
      EXPECT_TRUE(testing::allclose(stages[v]->dw, Tensor::zeros({testing::kToyH, testing::kToyH}), 0, 0));
    return;
  }
  for (int v = 0; v < V; ++v) {
    EXPECT_TRUE(testing::allclose(stages[v]->dw, ref.dw[v], 0, 0)) << "stage " << v;
    EXPECT_TRUE(stages[v]->saved.empty());
  }
  EXPECT_EQ(in_flight.now, 0);
  EXPECT_LE(in_flight.peak, pipeline_warmup(1, 0, V, M) + 1);
}

TEST(RunPipeline, OneRankEqualsTheSequentialChain) {
  run_local(1, 5);
  run_local(3, 1);
  run_local(3, 4);
  run_local(3, 4, /*forward_only=*/true);
}

struct BadShape final : PipelineChunk {
  bool last = false;
  Tensor forward(int m, const Tensor&) override { return Tensor::zeros({last ? 1 : 2, 3}); }
  Tensor backward(int m, const Tensor&) override { return Tensor::zeros({2, 3}); }
};

TEST(RunPipeline, ErrorsNameTheProblem) {
  std::unique_ptr<Communicator> self = make_self_communicator("pp");
  const PipelineConfig cfg{.num_microbatches = 2, .activation_shape = [](int) { return Shape{2, 4}; }};
  std::string e = error_of([&] { run_pipeline(*self, {}, cfg); });
  EXPECT_NE(e.find("no model chunks"), std::string::npos) << e;
  BadShape a, b;
  b.last = true;
  std::vector<PipelineChunk*> chunks{&a, &b};
  e = error_of([&] { run_pipeline(*self, chunks, {.num_microbatches = 0, .activation_shape = cfg.activation_shape}); });
  EXPECT_NE(e.find("num_microbatches must be >= 1, got 0"), std::string::npos) << e;
  e = error_of([&] { run_pipeline(*self, chunks, {.num_microbatches = 2}); });
  EXPECT_NE(e.find("activation_shape is not set"), std::string::npos) << e;
  e = error_of([&] { run_pipeline(*self, chunks, cfg); });
  EXPECT_NE(e.find("chunk 0 = global stage 0 of 2, microbatch 0): the forward output has shape (2, 3), "
                   "activation_shape(0) is (2, 4)"),
            std::string::npos)
      << e;
  const PipelineConfig fits{.num_microbatches = 2, .activation_shape = [](int) { return Shape{2, 3}; }};
  e = error_of([&] { run_pipeline(*self, chunks, fits); });
  EXPECT_NE(e.find("the last stage must keep its loss and return an undefined Tensor"), std::string::npos) << e;
  e = error_of([] { pipeline_order(2, 0, 2, 3); });
  EXPECT_NE(e.find("number of microbatches (3) is not divisible by pipeline-model-parallel size (2) when using "
                   "the interleaved schedule"),
            std::string::npos)
      << e;
  e = error_of([] { pipeline_order(2, 2, 1, 3); });
  EXPECT_NE(e.find("rank 2 outside the pipeline group of size 2"), std::string::npos) << e;
  e = error_of([] { pipeline_order(2, 0, 0, 3); });
  EXPECT_NE(e.find("at least one model chunk"), std::string::npos) << e;
}

}  // namespace
}  // namespace foundry
