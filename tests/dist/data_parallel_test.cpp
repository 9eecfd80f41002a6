// Data parallelism over the MPI world (run by mpirun with 2, 4 and 8 ranks): five train_steps of
// a small MoE, each rank on its share of every global batch, give the same losses, parameters and
// expert biases as one process running the whole global batch (computed on every rank with no
// communicator). fp32: losses within 1e-6 relative, parameters within 1e-5 relative in norm
// (only the summation order of the gradient differs).
#include "foundry/comm/communicator.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/train/train_step.h"
#include "testing.h"

namespace foundry {
namespace {

GPTConfig small_moe() {
  GPTConfig c{.vocab_size = 64, .hidden_size = 32, .num_layers = 2, .num_attention_heads = 4,
              .num_query_groups = 2, .ffn_hidden_size = 48};
  c.num_moe_experts = 8;
  c.moe_router_topk = 2;
  c.moe_ffn_hidden_size = 16;
  c.moe_layer_pattern = {0, 1};
  c.moe_router_score_function = "sigmoid";
  c.moe_router_enable_expert_bias = true;
  c.moe_router_bias_update_rate = 1e-2f;
  c.moe_shared_expert_intermediate_size = 16;
  c.moe_shared_expert_gate = true;
  c.moe_router_load_balancing_type = {"aux_loss", "seq_aux_loss"};
  c.moe_aux_loss_coeff = {1e-2f, 1e-3f};
  c.moe_z_loss_coeff = 1e-3f;
  return c;
}

void check_data_parallel(const DDPConfig& ddp) {
  Communicator& w = world();
  const int dp = w.size(), rank = w.rank();
  const int global_microbatches = 8;  // divisible by 1, 2, 4 and 8 ranks
  ASSERT_EQ(global_microbatches % dp, 0);
  GPTModel one(small_moe(), 7), par(small_moe(), 7);
  AdamW opt_one(one.params(), {.lr = 1e-2f, .weight_decay = 0.1f}), opt_par(par.params(), {.lr = 1e-2f, .weight_decay = 0.1f});
  Context ctx_one, ctx_par;
  for (int step = 0; step < 5; ++step) {
    std::vector<Batch> all, mine;
    for (int m = 0; m < global_microbatches; ++m) {
      all.push_back(synthetic_batch(2, 16, 64, 5, static_cast<uint64_t>(step * global_microbatches + m)));
      if (m % dp == rank) mine.push_back(all.back());
    }
    all.back().targets.ptr<int32_t>()[3] = -100;  // uneven valid-token counts across ranks
    const StepStats s1 = train_step(ctx_one, one, opt_one, all, 1e-2f, 1.f);
    const StepStats sp = train_step(ctx_par, par, opt_par, mine, 1e-2f, 1.f, &w, ddp);
    EXPECT_NEAR(sp.loss, s1.loss, 1e-6 * s1.loss) << "step " << step;
    EXPECT_NEAR(sp.grad_norm, s1.grad_norm, 1e-5 * s1.grad_norm) << "step " << step;
    EXPECT_EQ(sp.tokens, s1.tokens);
    if (ddp.overlap_grad_reduce) {  // every bucket started during the backward
      EXPECT_GT(sp.grad_buckets, 2);
      EXPECT_EQ(sp.grad_buckets_overlapped, sp.grad_buckets);
    }
    ASSERT_EQ(sp.moe.size(), 1u);
    EXPECT_EQ(sp.moe[0].tokens_per_expert, s1.moe[0].tokens_per_expert) << "step " << step;
    EXPECT_NEAR(sp.moe[0].aux_loss, s1.moe[0].aux_loss, 1e-6 * s1.moe[0].aux_loss);
  }
  for (int i = 0; i < one.params().size(); ++i)
    EXPECT_TRUE(testing::close_in_norm(par.params().param(i).value, one.params().param(i).value, 1e-5))
        << one.params().spec(i).name;
  // The expert bias moves by sign(mean - count) of identical integer counts: exactly equal.
  EXPECT_TRUE(testing::allclose(par.params().buffer(0), one.params().buffer(0), 0, 0));
}

TEST(DataParallel, StepsEqualOneProcessWithTheSameGlobalBatch) { check_data_parallel({}); }
// Gradient buckets (8 KB: several per step) all-reduced while the last microbatch's backward runs.
TEST(DataParallel, OverlappedGradientBucketsEqualOneProcess) {
  check_data_parallel({.overlap_grad_reduce = true, .bucket_size = 8192});
}

}  // namespace
}  // namespace foundry
