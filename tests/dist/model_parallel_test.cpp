// Model parallelism end to end (run by mpirun with 2, 4 and 8 ranks): for each layout of the issue
// (TP2 with SP (also with QKV bias and RoPE scaling), EP2 and EP4 with both token dispatchers, ETP2, PP2 with 1F1B, PP2 with 2 virtual
// stages, PP2 with uneven stages, TP2 x EP2 folded, PP2 x TP2 x EP2; tied embeddings over pipeline stages; gradient buckets
// overlapped with the backward; the distributed optimizer under TP2 x EP2, EP4 and PP2 x TP2 x EP2), five train_steps of a small MoE, each data-parallel
// rank on its share of every global batch, give the same losses, gradient norms and routing
// statistics as one process running the whole global batch (computed on every rank), and every
// rank's parameters (sharded ones: their blocks) equal the one-process parameters.
// Resharding: a checkpoint saved under TP2 x EP2 (rank 0 assembles the full tensors) loads under
// EP4, under PP2 x EP2 (each stage its half) and into one process, and the next step gives the same loss everywhere (1e-5 relative).
// fp32 tolerances: losses 1e-5 relative, the first step's gradients 1e-5 relative in norm per
// parameter, gradient norm 1e-4 relative, parameters 1e-4 relative in norm per parameter — the sums over ranks, the split GEMMs and the vocab-parallel softmax change
// the rounding, and five AdamW steps (which divide by sqrt(v)) carry it into the parameters.
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "foundry/checkpoint/checkpoint.h"
#include "foundry/comm/communicator.h"
#include "foundry/comm/mesh.h"
#include "foundry/train/model_parallel_checkpoint.h"
#include "foundry/train/parallel_checks.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/train/train_step.h"
#include "testing.h"

namespace foundry {
namespace {

GPTConfig small_moe() {
  GPTConfig c{.vocab_size = 64, .hidden_size = 32, .num_layers = 4, .num_attention_heads = 4,
              .num_query_groups = 2, .ffn_hidden_size = 48};
  c.num_moe_experts = 4;
  c.moe_router_topk = 2;
  c.moe_ffn_hidden_size = 16;
  c.moe_layer_pattern = {0, 1, 1, 1};
  c.moe_shared_expert_intermediate_size = 16;
  c.moe_router_load_balancing_type = {"aux_loss"};
  c.moe_aux_loss_coeff = {1e-2f};
  c.moe_z_loss_coeff = 1e-3f;
  c.qk_layernorm = true;
  return c;
}

struct Layout {
  ParallelConfig p;
  std::string dispatcher = "alltoall";
  bool overlap = false;  // gradient buckets reduced during the last backward (4 KB buckets: many)
  bool zero = false;     // the distributed optimizer (dense over dp_cp, experts over expt_dp)
};

// Model-parallel ranks per replica; the world must be a multiple of both generators' products.
bool fits(const ParallelConfig& p, int world) {
  const int64_t etp = p.expert_tensor_parallel_size ? p.expert_tensor_parallel_size : p.tensor_model_parallel_size;
  const int64_t attn = p.tensor_model_parallel_size * p.pipeline_model_parallel_size;
  const int64_t expt = etp * p.expert_model_parallel_size * p.pipeline_model_parallel_size;
  return world % attn == 0 && world % expt == 0;
}

// qwen2_llama3: Qwen2's QKV bias and Llama 3 RoPE scaling (short original context so that it acts).
void check_layout(const Layout& l, bool tied = false, bool qwen2_llama3 = false) {
  Communicator& w = world();
  if (!fits(l.p, w.size())) GTEST_SKIP() << "layout does not fit " << w.size() << " ranks";
  Mesh mesh(l.p, w);
  const ModelParallel mp = model_parallel_of(mesh, l.dispatcher);
  const int dp = mesh.dp_cp().size(), dp_rank = mesh.dp_cp().rank();
  const int global_microbatches = 8;
  GPTConfig cfg = small_moe();
  cfg.share_embeddings_and_output_weights = tied;
  if (qwen2_llama3) {
    cfg.add_qkv_bias = true;
    cfg.use_rope_scaling = true;
    cfg.rope_original_max_position_embeddings = 16;
  }
  GPTModel one(cfg, 7), par(cfg, 7, mp);
  // Sharded parameters start as their slice of the one-process initial values.
  for (int i = 0; i < par.params().size(); ++i) {
    const ParamSpec& s = par.params().spec(i);
    Tensor want = Tensor::empty(s.shape);
    copy_full_to_shard(s, one.params().at(s.name).value, want);
    ASSERT_TRUE(testing::allclose(par.params().param(i).value, want, 0, 0)) << s.name;
  }
  // Adam's eps at 1e-6 (not 1e-8): an element whose gradient is near eps moves by up to lr on
  // rounding-level gradient differences, which would test Adam's conditioning, not the layout.
  const AdamW::Config ac{.lr = 1e-2f, .eps = 1e-6f, .weight_decay = 0.1f};
  AdamW opt_one(one.params(), ac), opt_par(par.params(), ac);
  std::optional<DistributedAdamW> zero_dense, zero_expert;
  if (l.zero) {
    zero_dense.emplace(par.params(), ParamTable::Kind::dense, ac, *mp.dp);
    zero_expert.emplace(par.params(), ParamTable::Kind::expert, ac, *mp.expt_dp);
  }
  Context ctx_one, ctx_par;
  for (int step = 0; step < 5; ++step) {
    std::vector<Batch> all, mine;
    for (int m = 0; m < global_microbatches; ++m) {
      all.push_back(synthetic_batch(2, 8, 64, 5, static_cast<uint64_t>(step * global_microbatches + m)));
      if (m % dp == dp_rank) mine.push_back(all.back());
    }
    all.back().targets.ptr<int32_t>()[3] = -100;  // uneven valid-token counts across ranks
    const StepStats s1 = train_step(ctx_one, one, opt_one, all, 1e-2f, 1.f);
    const StepStats sp = l.zero ? train_step(ctx_par, par, *zero_dense, *zero_expert, mine, 1e-2f, 1.f)
                                : train_step(ctx_par, par, opt_par, mine, 1e-2f, 1.f, nullptr,
                                             {.overlap_grad_reduce = l.overlap, .bucket_size = 4096});
    EXPECT_NEAR(sp.loss, s1.loss, 1e-5 * s1.loss) << "step " << step;
    EXPECT_NEAR(sp.grad_norm, s1.grad_norm, 1e-4 * s1.grad_norm) << "step " << step;
    EXPECT_EQ(sp.tokens, s1.tokens);
    if (l.overlap) {  // every bucket started during the backward
      EXPECT_GT(sp.grad_buckets, 2);
      EXPECT_EQ(sp.grad_buckets_overlapped, sp.grad_buckets);
    }
    // Equal parameters: the summed gradients agree (the distributed optimizer keeps the sums in its
    // shards, the table holds this rank's own part: checked through the norm and the parameters).
    for (int i = 0; step == 0 && !l.zero && i < par.params().size(); ++i) {
      const ParamSpec& s = par.params().spec(i);
      Tensor want = Tensor::empty(s.shape);
      copy_full_to_shard(s, one.params().at(s.name).grad, want);
      EXPECT_TRUE(testing::close_in_norm(par.params().param(i).grad, want, 1e-5)) << "gradient of " << s.name;
    }
    for (const MoELayerStats& m : sp.moe) {  // this rank's layers (pipeline stages hold some)
      const MoELayerStats& r = s1.moe[static_cast<size_t>(m.layer - 1)];
      ASSERT_EQ(r.layer, m.layer);
      EXPECT_EQ(m.tokens_per_expert, r.tokens_per_expert) << "step " << step << " layer " << m.layer;
      EXPECT_NEAR(m.aux_loss, r.aux_loss, 1e-5 * r.aux_loss) << "step " << step << " layer " << m.layer;
      EXPECT_NEAR(m.z_loss, r.z_loss, 1e-5 * r.z_loss) << "step " << step << " layer " << m.layer;
    }
  }
  for (int i = 0; i < par.params().size(); ++i) {
    const ParamSpec& s = par.params().spec(i);
    Tensor want = Tensor::empty(s.shape);
    copy_full_to_shard(s, one.params().at(s.name).value, want);
    EXPECT_TRUE(testing::close_in_norm(par.params().param(i).value, want, 1e-4)) << s.name;
  }
}

ParallelConfig config(int64_t tp, int64_t ep, int64_t pp, int64_t etp = 0, int64_t vpp = 0) {
  return {.tensor_model_parallel_size = tp, .expert_model_parallel_size = ep, .expert_tensor_parallel_size = etp,
          .pipeline_model_parallel_size = pp, .virtual_pipeline_model_parallel_size = vpp,
          .sequence_parallel = tp > 1};
}

TEST(ModelParallel, TP2WithSequenceParallel) { check_layout({config(2, 1, 1)}); }
TEST(ModelParallel, TP2WithQkvBiasAndRopeScaling) { check_layout({config(2, 1, 1)}, false, true); }
TEST(ModelParallel, EP2Alltoall) { check_layout({config(1, 2, 1)}); }
TEST(ModelParallel, EP2Allgather) { check_layout({config(1, 2, 1), "allgather"}); }
TEST(ModelParallel, EP4Alltoall) { check_layout({config(1, 4, 1)}); }
TEST(ModelParallel, EP4Allgather) { check_layout({config(1, 4, 1), "allgather"}); }
TEST(ModelParallel, ETP2) { check_layout({config(1, 1, 1, 2)}); }
TEST(ModelParallel, PP2OneFOneB) { check_layout({config(1, 1, 2)}); }
TEST(ModelParallel, PP2TwoVirtualStages) { check_layout({config(1, 1, 2, 0, 2)}); }
TEST(ModelParallel, PP2UnevenStages) {  // 1 layer on the first stage, 3 on the last
  ParallelConfig p = config(1, 1, 2);
  p.decoder_first_pipeline_num_layers = 1;
  check_layout({p});
}
TEST(ModelParallel, PP2TiedEmbeddings) { check_layout({config(1, 1, 2)}, true); }
TEST(ModelParallel, PP2TP2TiedEmbeddings) { check_layout({config(2, 1, 2)}, true); }
TEST(ModelParallel, TP2EP2Folded) { check_layout({config(2, 2, 1)}); }
TEST(ModelParallel, TP2EP2FoldedAllgather) { check_layout({config(2, 2, 1), "allgather"}); }
TEST(ModelParallel, PP2TP2EP2) { check_layout({config(2, 2, 2)}); }
TEST(ModelParallel, TP2EP2WithDistributedOptimizer) { check_layout({config(2, 2, 1), "alltoall", false, true}); }
TEST(ModelParallel, EP4WithDistributedOptimizer) { check_layout({config(1, 4, 1), "alltoall", false, true}); }
TEST(ModelParallel, PP2TP2EP2WithDistributedOptimizer) { check_layout({config(2, 2, 2), "alltoall", false, true}, true); }
TEST(ModelParallel, TP2EP2WithOverlappedGradientBuckets) { check_layout({config(2, 2, 1), "alltoall", true}); }
TEST(ModelParallel, PP2VPP2WithOverlappedGradientBuckets) { check_layout({config(1, 2, 2, 0, 2), "alltoall", true}); }

std::vector<Batch> global_batch(int step) {
  std::vector<Batch> all;
  for (int m = 0; m < 8; ++m) all.push_back(synthetic_batch(2, 8, 64, 5, static_cast<uint64_t>(100 + step * 8 + m)));
  return all;
}
std::vector<Batch> share_of(const std::vector<Batch>& all, const Mesh& mesh) {
  std::vector<Batch> mine;
  for (size_t m = 0; m < all.size(); ++m)
    if (static_cast<int>(m) % mesh.dp_cp().size() == mesh.dp_cp().rank()) mine.push_back(all[m]);
  return mine;
}

TEST(ModelParallel, CheckpointSavedUnderTP2EP2LoadsUnderEP4AndOneProcess) {
  Communicator& w = world();
  if (w.size() < 4) GTEST_SKIP() << "needs 4 ranks";
  const AdamW::Config ac{.lr = 1e-2f, .weight_decay = 0.1f};
  Mesh mesh_a(config(2, 2, 1), w), mesh_b(config(1, 4, 1), w), mesh_c(config(1, 2, 2), w);
  GPTModel a(small_moe(), 7, model_parallel_of(mesh_a));
  AdamW opt_a(a.params(), ac);
  Context ctx;
  for (int step = 0; step < 2; ++step) train_step(ctx, a, opt_a, share_of(global_batch(step), mesh_a), 1e-2f, 1.f);
  // Rank 0 saves the assembled model into a directory named by its pid.
  Tensor pid = Tensor::from<int64_t>({1}, std::vector<int64_t>{static_cast<int64_t>(getpid())});
  w.broadcast(pid, 0);
  const std::string root = (std::filesystem::temp_directory_path() /
                            ("foundry_reshard_" + std::to_string(pid.ptr<int64_t>()[0]))).string();
  const FullModelState full = gather_full_model(a, &opt_a);
  if (w.rank() == 0) {
    ASSERT_TRUE(full.model && full.optimizer);
    save_checkpoint({.step = 2, .params = &full.model->params(), .optimizer = full.optimizer.get()}, root);
  } else {
    EXPECT_FALSE(full.model);
  }
  w.barrier();
  GPTModel b(small_moe(), 99, model_parallel_of(mesh_b)), one(small_moe(), 99);  // other seeds: all from the file
  AdamW opt_b(b.params(), ac), opt_one(one.params(), ac);
  load_checkpoint(root, b.params(), &opt_b);
  load_checkpoint(root, one.params(), &opt_one);
  GPTModel c(small_moe(), 99, model_parallel_of(mesh_c));  // a pipeline stage: half of the tensors
  AdamW opt_c(c.params(), ac);
  EXPECT_THROW(load_checkpoint(root, c.params(), &opt_c), Error);  // without partial_model: "unknown" tensors
  load_checkpoint(root, c.params(), &opt_c, /*partial_model=*/true);
  EXPECT_EQ(opt_b.steps(), 2);
  EXPECT_EQ(opt_one.steps(), 2);
  const std::vector<Batch> next = global_batch(2);
  const StepStats sa = train_step(ctx, a, opt_a, share_of(next, mesh_a), 1e-2f, 1.f);
  const StepStats sb = train_step(ctx, b, opt_b, share_of(next, mesh_b), 1e-2f, 1.f);
  const StepStats sc = train_step(ctx, c, opt_c, share_of(next, mesh_c), 1e-2f, 1.f);
  const StepStats s1 = train_step(ctx, one, opt_one, next, 1e-2f, 1.f);
  EXPECT_NEAR(sa.loss, s1.loss, 1e-5 * s1.loss);
  EXPECT_NEAR(sc.loss, s1.loss, 1e-5 * s1.loss);
  EXPECT_NEAR(sb.loss, s1.loss, 1e-5 * s1.loss);
  EXPECT_NEAR(sb.grad_norm, s1.grad_norm, 1e-4 * s1.grad_norm);
  for (int i = 0; i < b.params().size(); ++i) {  // and the updated parameters agree
    const ParamSpec& s = b.params().spec(i);
    Tensor want = Tensor::empty(s.shape);
    copy_full_to_shard(s, one.params().at(s.name).value, want);
    EXPECT_TRUE(testing::close_in_norm(b.params().param(i).value, want, 1e-4)) << s.name;
  }
  w.barrier();
  if (w.rank() == 0) std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace foundry
