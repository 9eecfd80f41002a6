// Upcycling from checkpoints (train/upcycling.h) and continuing training (Trainer::resume):
// a tiny dense run trained 2 steps is upcycled offline (E8G2T4, topk-then-softmax: exact) and
// online (model.upcycle_from); both continue at step 2 with the dense data position and RNG and a
// fresh AdamW, the first MoE loss equals the dense run's step-3 loss (1e-5 relative), and offline
// and online give the same model bit for bit. Errors: a config that does not match the dense checkpoint, a dense
// checkpoint missing a tensor, an output root that already holds checkpoints.
#include "foundry/train/upcycling.h"

#include <cstring>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "foundry/checkpoint/checkpoint.h"
#include "foundry/train/data_setup.h"
#include "foundry/train/trainer.h"
#include "testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;

// Per process: ctest runs the tests of this file as separate processes at the same time.
std::string scratch(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "foundry_upcycling_" + name + "_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> base_overrides(const std::string& out) {
  return {"model.vocab_size=64", "model.hidden_size=32", "model.num_layers=2", "model.num_attention_heads=4",
          "model.num_query_groups=2", "model.ffn_hidden_size=64", "model.init_method_std=0.1",
          "train.micro_batch_size=2", "train.seq_length=16", "train.train_iters=3", "train.lr=1e-2",
          "train.log_interval=1", "train.output_dir=" + out, "data.mock_data=true"};
}
const std::vector<std::string> kMoE = {"model.num_moe_experts=8", "model.moe_router_topk=4",
                                       "model.moe_ffn_hidden_size=32"};

RunConfig run(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> o = base_overrides(out);
  o.insert(o.end(), extra.begin(), extra.end());
  return RunConfig::parse("", "test", o);
}

std::unique_ptr<Trainer> trainer(RunConfig cfg) {
  TrainingData d = build_training_data(cfg, stdout);
  return std::make_unique<Trainer>(cfg, std::move(d.data), d.tokenizer, stdout);
}

bool bitwise_equal(const ParamTable& a, const ParamTable& b) {
  if (a.size() != b.size()) return false;
  for (int i = 0; i < a.size(); ++i)
    if (a.spec(i).name != b.spec(i).name ||
        std::memcmp(a.param(i).value.data(), b.param(i).value.data(), static_cast<size_t>(a.param(i).value.nbytes())))
      return false;
  return true;
}

// A dense run trained 2 steps (its checkpoint is the latest), and its own step-3 loss.
class UpcyclingRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dense_out_ = scratch("dense");
    trainer(run(dense_out_))->train(2);  // saves iter_0000002
    auto cont = trainer(run(dense_out_));
    ASSERT_TRUE(cont->resume());
    cont->train(3);
    dense_step3_ = cont->step_losses().at(0);
    fs::remove_all(dense_out_ + "/checkpoints/iter_0000003");  // keep the step-2 checkpoint the latest
    fs::remove(dense_out_ + "/checkpoints/latest_checkpointed_iteration.txt");
  }
  static OfflineUpcycleResult offline(const std::string& out) {
    return upcycle_checkpoint(
        {.dense = dense_out_, .options = {.num_experts = 8, .topk = 4, .granularity = 2}, .out = out});
  }
  static inline std::string dense_out_;
  static inline double dense_step3_ = 0;
};

TEST_F(UpcyclingRun, OfflineCheckpointContinuesWithTheDenseLoss) {
  const std::string moe_root = scratch("moe_ckpt");
  const OfflineUpcycleResult r = offline(moe_root);
  EXPECT_EQ(r.step, 2);
  EXPECT_FALSE(has_optimizer_state(r.checkpoint_dir));
  const nlohmann::json state = read_trainer_state(r.checkpoint_dir);
  EXPECT_EQ(state["upcycled_from"]["granularity"], 2);
  EXPECT_EQ(state["upcycled_from"]["c"], 2.0);
  EXPECT_EQ(state["upcycled_from"]["router"], "topk-then-softmax");
  const nlohmann::json dense_state = read_trainer_state(dense_out_ + "/checkpoints/iter_0000002");
  EXPECT_EQ(state["consumed_samples"], dense_state["consumed_samples"]);
  EXPECT_EQ(state["rng"], dense_state["rng"]);
  EXPECT_EQ(r.config.model.num_moe_experts, 8);
  EXPECT_EQ(r.config.model.moe_ffn_hidden_size, 32);
  EXPECT_ERROR_MENTIONS(offline(moe_root), "already holds checkpoints");

  // A recipe without the MoE model section: one error naming the keys.
  auto dense_recipe = trainer(run(scratch("offline_dense_recipe"), {"train.load=" + moe_root}));
  EXPECT_ERROR_MENTIONS(dense_recipe->resume(), "upcycled MoE checkpoint", "model.num_moe_experts=8 (the recipe has 0)",
                        "model.moe_ffn_hidden_size=32");

  std::vector<std::string> args = kMoE;
  args.push_back("train.load=" + moe_root);
  auto t = trainer(run(scratch("offline_run"), args));
  ASSERT_TRUE(t->resume());
  EXPECT_EQ(t->step(), 2);
  EXPECT_EQ(t->optimizer_steps(), 0);
  t->train(3);
  ASSERT_EQ(t->step_losses().size(), 1u);
  EXPECT_NEAR(t->step_losses()[0], dense_step3_, 1e-5 * dense_step3_);
  EXPECT_EQ(t->optimizer_steps(), 1);
}

TEST_F(UpcyclingRun, OnlineEqualsOfflineAndIsDroppedOnceTheRunHasACheckpoint) {
  const std::string moe_root = scratch("moe_ckpt_ref");
  offline(moe_root);
  std::vector<std::string> args = kMoE;
  args.push_back("model.upcycle_from=" + dense_out_);
  const std::string out = scratch("online_run");
  auto t = trainer(run(out, args));
  ASSERT_TRUE(t->resume());
  EXPECT_EQ(t->step(), 2);
  GPTModel ref(t->model().config(), 1);
  load_checkpoint(moe_root, ref.params());
  EXPECT_TRUE(bitwise_equal(t->model().params(), ref.params()));
  t->train(3);
  EXPECT_NEAR(t->step_losses().at(0), dense_step3_, 1e-5 * dense_step3_);
  // The distributed optimizer takes its master weights from the upcycled parameters.
  std::vector<std::string> zero_args = args;
  zero_args.push_back("train.use_distributed_optimizer=true");
  auto zero = trainer(run(scratch("online_zero_run"), zero_args));
  ASSERT_TRUE(zero->resume());
  zero->train(3);
  EXPECT_EQ(zero->step_losses().at(0), t->step_losses().at(0));
  for (int i = 0; i < t->model().params().size(); ++i)
    EXPECT_TRUE(testing::close_in_norm(zero->model().params().param(i).value, t->model().params().param(i).value, 1e-5))
        << t->model().params().spec(i).name;
  // Once the run has a checkpoint the flag is ignored: it resumes.
  auto again = trainer(run(out, args));
  ASSERT_TRUE(again->resume());
  EXPECT_EQ(again->step(), 3);
  EXPECT_EQ(again->optimizer_steps(), 1);
}

TEST(Upcycling, MismatchesAndMissingTensorsAreClearErrors) {
  // A dense checkpoint written directly (no training needed).
  const std::string dense_out = scratch("dense_small");
  RunConfig dense_cfg = run(dense_out);
  {
    GPTModel dense(dense_cfg.model, 1);
    save_checkpoint({.step = 1, .params = &dense.params(),
                     .trainer_state = {{"config", dense_cfg.to_yaml()}, {"consumed_samples", 2}}},
                    dense_out + "/checkpoints");
  }
  // The MoE recipe disagrees with the dense checkpoint outside the MLP.
  std::vector<std::string> args = kMoE;
  args.push_back("model.upcycle_from=" + dense_out);
  args.push_back("model.num_query_groups=4");
  auto t = trainer(run(scratch("mismatch_run"), args));
  EXPECT_ERROR_MENTIONS(t->resume(), "model.num_query_groups", "2", "4");
  // A dense checkpoint whose config names a tensor its files lack: its config says 3 layers.
  const std::string ckpt = dense_out + "/checkpoints/iter_0000001";
  nlohmann::json state = read_trainer_state(ckpt);
  RunConfig c = RunConfig::parse(state["config"].get<std::string>(), "state");
  c.model.num_layers = 3;
  state["config"] = c.to_yaml();
  std::ofstream(ckpt + "/trainer_state.json") << state.dump(2);
  EXPECT_ERROR_MENTIONS(upcycle_checkpoint({.dense = ckpt, .options = {.num_experts = 4, .topk = 2},
                                            .out = scratch("bad_out")}),
                        "iter_0000001", "has no tensor", "decoder.layers.2.");
  EXPECT_ERROR_MENTIONS(upcycle_checkpoint({.dense = ckpt, .options = {.num_experts = 4, .topk = 2, .granularity = 3},
                                            .out = scratch("bad_out2")}),
                        "ffn_hidden_size 64", "granularity 3");
}

}  // namespace
}  // namespace foundry
