// DistributedAdamW (ZeRO-1) over the MPI world (mpirun with 2, 4 and 8 ranks) and over split
// sub-groups: each rank has its own deterministic gradients; every rank checks, against the
// replicated AdamW + clip_grad_norm on the sum of all ranks' gradients computed locally, five steps
// with clipping (parameters equal bit for bit: the gradients are on a 1/16 grid, so every sum is
// exact in any order), the gathered state, scatter(gather(state)) and a resume from a replicated
// AdamW, for a table that shards exactly and one that needs padding (tests/optim/
// distributed_optimizer_check.h). The range optimizers (dense over the world, experts over blocks)
// are checked the same way against AdamW fed dense gradients summed over the world and expert
// gradients summed over the block.
#include <gtest/gtest.h>

#include "foundry/comm/communicator.h"
#include "foundry/ops/loss.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/train/train_step.h"
#include "optim/distributed_optimizer_check.h"
#include "testing.h"

namespace foundry {
namespace {

TEST(DistDistributedAdamW, WorldEqualsAdamWOnTheSummedGradient) {
  Communicator& w = world();
  zero_test::check_against_adamw(w, /*tiny=*/false);  // N = 128: exact shards
  zero_test::check_against_adamw(w, /*tiny=*/true);   // N = 48: padded shards
  w.barrier();
}

TEST(DistDistributedAdamW, SplitDataParallelGroups) {
  // Two dp groups (even and odd ranks, reversed order), as when the world also holds TP or PP.
  Communicator& w = world();
  auto dp = w.split(w.rank() % 2, -w.rank(), "dp");
  EXPECT_EQ(dp->size(), w.size() / 2);
  zero_test::check_against_adamw(*dp, /*tiny=*/false);
  zero_test::check_against_adamw(*dp, /*tiny=*/true);
  w.barrier();
}

// Dense parameters over the world, expert parameters over blocks of 2 (and of 4 where the world
// has 8 ranks) consecutive ranks, as with the expert-data-parallel group of a model split over
// expert ranks; also the whole-arena optimizer over a table with both kinds, and an empty expert
// range (a no-op optimizer) over pairs.
TEST(DistDistributedAdamW, DenseAndExpertRangesEqualAdamW) {
  Communicator& w = world();
  for (int e : {2, 4}) {
    if (w.size() % e != 0 || (e == 4 && w.size() < 8)) continue;
    auto edp = w.split(w.rank() / e, w.rank(), "expt_dp");
    EXPECT_EQ(edp->size(), e);
    zero_test::check_kinds(w, *edp, /*experts=*/true);
    if (e == 2) zero_test::check_kinds(w, *edp, /*experts=*/false);
  }
  zero_test::check_against_adamw(w, /*tiny=*/false, /*experts=*/true);
  w.barrier();
}

// The wiring train_step gets under train.use_distributed_optimizer: the gradients of this rank's
// microbatches (loss normalised by the global batch's valid tokens), then reduce_gradients
// (reduce-scatter instead of all_reduce, the norm over the shards) and step (all-gather). Five steps
// of a dense GPT equal one process running train_step with AdamW on the whole global batch;
// fp32: grad norms within 1e-6 relative, parameters within 1e-5 relative in norm (the summation
// order of the gradient differs), as in data_parallel_test.cpp.
TEST(DistDistributedAdamW, DenseGPTStepsEqualOneProcessTrainStep) {
  Communicator& w = world();
  const int dp = w.size(), rank = w.rank();
  const GPTConfig cfg{.vocab_size = 64, .hidden_size = 32, .num_layers = 2, .num_attention_heads = 4,
                      .num_query_groups = 2, .ffn_hidden_size = 48};
  const AdamW::Config opt_cfg{.lr = 1e-2f, .weight_decay = 0.1f};
  GPTModel one(cfg, 7), par(cfg, 7);
  AdamW opt_one(one.params(), opt_cfg);
  DistributedAdamW zero(par.params(), opt_cfg, w);
  Context ctx_one, ctx_par;
  const int global_microbatches = 8;
  for (int step = 0; step < 5; ++step) {
    std::vector<Batch> all, mine;
    for (int m = 0; m < global_microbatches; ++m) {
      all.push_back(synthetic_batch(2, 16, 64, 5, static_cast<uint64_t>(step * global_microbatches + m)));
      if (m % dp == rank) mine.push_back(all.back());
    }
    all.back().targets.ptr<int32_t>()[3] = -100;  // uneven valid-token counts across ranks
    const float lr = 1e-2f, clip = step % 2 ? 0.05f : 1.f;  // odd steps clip
    const StepStats s1 = train_step(ctx_one, one, opt_one, all, lr, clip);

    double global_valid = 0;
    for (const Batch& b : mine)
      for (int64_t i = 0; i < b.targets.numel(); ++i) global_valid += b.targets.ptr<int32_t>()[i] != -100;
    global_valid = w.all_reduce_sum(global_valid);
    par.params().zero_grad();
    par.begin_global_batch();
    for (const Batch& b : mine) {
      GPTModel::Saved saved;
      Tensor logits = par.forward(ctx_par, b.tokens, b.layout, saved);
      cross_entropy_fused({.logits = logits, .targets = b.targets, .token_count = global_valid, .dlogits = logits});
      par.backward(ctx_par, logits, b.layout, saved);
    }
    const GradClip c = zero.reduce_gradients(clip);
    EXPECT_NEAR(c.norm, s1.grad_norm, 1e-6 * s1.grad_norm) << "step " << step;
    if (step % 2) {
      EXPECT_LT(c.coefficient, 1.f) << "step " << step;
    }
    zero.step(lr, c.coefficient);
    par.finish_optimizer_step(true, &w);
  }
  for (int i = 0; i < one.params().size(); ++i)
    EXPECT_TRUE(testing::close_in_norm(par.params().param(i).value, one.params().param(i).value, 1e-5))
        << one.params().spec(i).name;
  // Every rank holds the same parameters (the all-gather), and the state gathers to AdamW's.
  std::vector<Tensor> m, v;
  zero.gather_state(m, v);
  for (int i = 0; i < one.params().size(); ++i)
    EXPECT_TRUE(testing::close_in_norm(m[static_cast<size_t>(i)], opt_one.exp_avg(i), 1e-5))
        << one.params().spec(i).name;
  w.barrier();
}

}  // namespace
}  // namespace foundry
