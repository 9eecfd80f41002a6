// Checkpoints with a real GPTModel and AdamW: bit-identical round trip (and resumed training),
// shards, validation errors, atomicity under a failure mid-save, leftover temporaries,
// retention and the summary.
#include "foundry/checkpoint/checkpoint.h"

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "checkpoint/scratch.h"
#include "foundry/checkpoint/durable_io.h"
#include "foundry/checkpoint/safetensors.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/train/train_step.h"
#include "testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::scratch_dir;
using testing::write_bytes;

GPTConfig tiny(bool tied = false, int64_t hidden = 32) {
  GPTConfig c;
  c.vocab_size = 61;
  c.hidden_size = hidden;
  c.num_layers = 2;
  c.num_attention_heads = 4;
  c.num_query_groups = 2;
  c.ffn_hidden_size = 48;
  c.share_embeddings_and_output_weights = tied;
  return c;
}

// A model and optimizer that have taken `steps` training steps.
struct Trained {
  GPTModel model;
  AdamW opt;
  Context ctx;
  Trained(uint64_t seed, int steps, GPTConfig cfg = tiny())
      : model(cfg, seed), opt(model.params(), {.lr = 1e-2f, .weight_decay = 0.1f}) {
    for (int i = 0; i < steps; ++i) step(i);
  }
  void step(int index) {
    const Batch batch = synthetic_batch(2, 8, model.config().vocab_size, 7, index);
    train_step(ctx, model, opt, std::span(&batch, 1), 1e-2f, 1.0f);
  }
};

bool bytes_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data(), b.data(), static_cast<size_t>(a.nbytes())) == 0;
}

::testing::AssertionResult identical(Trained& a, Trained& b) {
  ParamTable& ta = a.model.params();
  ParamTable& tb = b.model.params();
  for (int i = 0; i < ta.size(); ++i) {
    if (!bytes_equal(ta.param(i).value, tb.param(i).value))
      return ::testing::AssertionFailure() << "parameter " << ta.spec(i).name << " differs";
    if (!bytes_equal(a.opt.exp_avg(i), b.opt.exp_avg(i)) || !bytes_equal(a.opt.exp_avg_sq(i), b.opt.exp_avg_sq(i)))
      return ::testing::AssertionFailure() << "optimizer state of " << ta.spec(i).name << " differs";
  }
  if (a.opt.steps() != b.opt.steps()) return ::testing::AssertionFailure() << "optimizer steps differ";
  return ::testing::AssertionSuccess();
}

CheckpointContents contents(Trained& t, int64_t step) {
  CheckpointContents c;
  c.step = step;
  c.params = &t.model.params();
  c.optimizer = &t.opt;
  c.trainer_state = {{"consumed_samples", 2 * step},
                     {"rng", {{"seed", 7}, {"offset", 123}}},
                     {"data_position", {{"epoch", 0}, {"index", step}}},
                     {"config", "model:\n  hidden_size: 32\n  num_layers: 2\ntrain:\n  lr: 0.01\n"}};
  c.save_tokenizer = [](const std::string& dir) { write_bytes(dir + "/tokenizer.json", "{\"model\": {}}"); };
  return c;
}

std::vector<std::string> entries_of(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Checkpoint, RoundTripIsBitIdenticalAndTrainingResumesIdentically) {
  const std::string root = scratch_dir();
  Trained a(1, 1);
  const std::string dir = save_checkpoint(contents(a, 1), root);
  EXPECT_EQ(dir, root + "/iter_0000001");
  EXPECT_EQ(entries_of(dir), (std::vector<std::string>{"model.safetensors", "optimizer.safetensors", "tokenizer",
                                                       "trainer_state.json"}));
  EXPECT_EQ(read_bytes(root + "/latest_checkpointed_iteration.txt"), "1");
  EXPECT_EQ(entries_of(root), (std::vector<std::string>{"iter_0000001", "latest_checkpointed_iteration.txt"}));

  Trained b(2, 0);  // other initial weights, fresh optimizer
  const LoadedCheckpoint loaded = load_checkpoint(dir, b.model.params(), &b.opt);
  EXPECT_EQ(loaded.dir, dir);
  EXPECT_EQ(loaded.step, 1);
  EXPECT_EQ(loaded.trainer_state["consumed_samples"], 2);
  EXPECT_EQ(loaded.trainer_state["rng"]["offset"], 123);
  EXPECT_EQ(loaded.tokenizer_dir, dir + "/tokenizer");
  EXPECT_TRUE(identical(a, b));

  // Resumed training follows the uninterrupted run bit for bit.
  for (int i = 1; i < 3; ++i) {
    a.step(i);
    b.step(i);
  }
  EXPECT_TRUE(identical(a, b));

  // Loading from the root picks its latest checkpoint.
  Trained c(3, 0);
  EXPECT_EQ(load_checkpoint(root, c.model.params(), &c.opt).dir, dir);
  // The model alone (no optimizer) loads too.
  Trained d(4, 0);
  load_checkpoint(dir, d.model.params());
  EXPECT_TRUE(bytes_equal(d.model.params().param(0).value, c.model.params().param(0).value));
}

// Buffers (the MoE router's expert bias) are saved and loaded with the parameters; a model
// without them refuses the checkpoint, naming the buffer.
TEST(Checkpoint, BuffersRoundTripAndMismatchesNameThem) {
  GPTConfig moe = tiny();
  moe.num_moe_experts = 4;
  moe.moe_ffn_hidden_size = 16;
  moe.moe_router_score_function = "sigmoid";
  moe.moe_router_enable_expert_bias = true;
  Trained a(3, 2, moe);
  const Tensor& bias = a.model.moe_layers()[0].second->router.expert_bias;
  ASSERT_EQ(a.model.params().num_buffers(), 2);
  const std::string dir = save_checkpoint(contents(a, 2), scratch_dir());
  Trained b(4, 0, moe);
  load_checkpoint(dir, b.model.params(), &b.opt);
  EXPECT_TRUE(identical(a, b));
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(bytes_equal(a.model.params().buffer(i), b.model.params().buffer(i)));
  float moved = 0;
  for (float v : bias.to_vector()) moved += std::abs(v);
  EXPECT_GT(moved, 0.f);  // the bias did move in two steps, so the comparison above means something
  GPTConfig no_bias = moe;
  no_bias.moe_router_enable_expert_bias = false;
  Trained c(4, 0, no_bias);
  EXPECT_ERROR_MENTIONS(load_checkpoint(dir, c.model.params()), "decoder.layers.0.mlp.router.expert_bias",
                        "does not have");
}

TEST(Checkpoint, LargeModelsAreShardedWithAnIndex) {
  const std::string root = scratch_dir();
  Trained a(1, 1);
  CheckpointContents c = contents(a, 5);
  c.max_shard_bytes = 16 * 1024;
  const std::string dir = save_checkpoint(c, root);
  const ShardedSafetensors model(dir);
  EXPECT_TRUE(model.sharded());
  EXPECT_GT(model.files().size(), 2u);
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  Trained b(2, 0);
  load_checkpoint(dir, b.model.params(), &b.opt);
  EXPECT_TRUE(identical(a, b));
}

TEST(Checkpoint, MismatchesNameTheParameterAndTheCheckpoint) {
  const std::string root = scratch_dir();
  Trained a(1, 0);
  const std::string dir = save_checkpoint(contents(a, 3), root);

  Trained wider(1, 0, tiny(false, 48));
  const auto before = wider.model.params().param(0).value.clone();
  EXPECT_ERROR_MENTIONS(load_checkpoint(dir, wider.model.params()), "iter_0000003",
                        "embedding.word_embeddings.weight", "F32 (61, 32)", "expects F32 (61, 48)");
  EXPECT_TRUE(bytes_equal(before, wider.model.params().param(0).value));  // nothing copied
  Trained tied(1, 0, tiny(true));
  EXPECT_ERROR_MENTIONS(load_checkpoint(dir, tied.model.params()), "iter_0000003", "'output_layer.weight'",
                        "model does not have");

  // A checkpoint saved without optimizer state cannot restore an optimizer.
  CheckpointContents no_opt = contents(a, 4);
  no_opt.optimizer = nullptr;
  const std::string dir4 = save_checkpoint(no_opt, root);
  Trained b(2, 0);
  EXPECT_ERROR_MENTIONS(load_checkpoint(dir4, b.model.params(), &b.opt), "iter_0000004", "no optimizer state");
  // Missing or corrupt files.
  fs::remove(dir4 + "/model.safetensors");
  EXPECT_ERROR_MENTIONS(load_checkpoint(dir4, b.model.params()), "iter_0000004", "neither model.safetensors");
  const std::string opt_path = dir + "/optimizer.safetensors";
  const std::string opt_bytes = read_bytes(opt_path);
  write_bytes(opt_path, opt_bytes.substr(0, opt_bytes.size() / 2));
  EXPECT_ERROR_MENTIONS(load_checkpoint(dir, b.model.params(), &b.opt), "optimizer.safetensors", "truncated");
  write_bytes(dir + "/trainer_state.json", "{\"step\": ");
  EXPECT_ERROR_MENTIONS(load_checkpoint(dir, b.model.params()), "trainer_state.json", "not valid JSON");
  EXPECT_ERROR_MENTIONS(load_checkpoint(root + "/nope", b.model.params()), "nope", "does not exist");
  EXPECT_ERROR_MENTIONS(load_checkpoint(scratch_dir(), b.model.params()), "neither a checkpoint");

  CheckpointContents wrong_step = contents(a, 9);
  wrong_step.trainer_state["step"] = 8;
  EXPECT_ERROR_MENTIONS(save_checkpoint(wrong_step, root), "step 8", "step 9");
}

TEST(Checkpoint, AFailureMidSaveLeavesThePreviousCheckpointAsTheLatest) {
  const std::string root = scratch_dir();
  Trained a(1, 1);
  const std::string dir1 = save_checkpoint(contents(a, 1), root);
  const std::string model1 = read_bytes(dir1 + "/model.safetensors");
  const std::string state1 = read_bytes(dir1 + "/trainer_state.json");

  a.step(1);
  CheckpointContents crash = contents(a, 2);
  crash.save_tokenizer = [](const std::string& dir) {
    write_bytes(dir + "/vocab.json", "{\"partial");
    throw std::runtime_error("disk full while writing the tokenizer");
  };
  EXPECT_THROW(save_checkpoint(crash, root, 1), std::runtime_error);

  EXPECT_EQ(entries_of(root), (std::vector<std::string>{"iter_0000001", "latest_checkpointed_iteration.txt"}));
  EXPECT_EQ(read_bytes(root + "/latest_checkpointed_iteration.txt"), "1");
  EXPECT_EQ(latest_checkpoint(root), dir1);
  EXPECT_EQ(read_bytes(dir1 + "/model.safetensors"), model1);
  EXPECT_EQ(read_bytes(dir1 + "/trainer_state.json"), state1);
  Trained b(2, 0);
  EXPECT_EQ(load_checkpoint(root, b.model.params(), &b.opt).step, 1);
}

// A pid no process has now (a temp directory "left by a crashed process").
int64_t dead_pid() {
  for (int64_t pid = 4'000'000; pid > 1000; --pid)
    if (!process_alive(pid)) return pid;
  return -1;
}

TEST(Checkpoint, LeftoverTemporariesAreIgnoredAndCleanedOnTheNextSave) {
  const std::string root = scratch_dir();
  Trained a(1, 0);
  save_checkpoint(contents(a, 1), root);
  // A hard crash (kill -9) after writing everything but before the rename, at a later step.
  const std::string leftover = fmt::format("{}/.tmp-iter_0000007-{}", root, dead_pid());
  fs::create_directories(leftover);
  fs::copy(root + "/iter_0000001", leftover, fs::copy_options::recursive);
  write_bytes(fmt::format("{}/latest_checkpointed_iteration.txt.tmp-{}", root, dead_pid()), "7");
  // A directory named like a checkpoint without trainer_state.json is not one either.
  fs::create_directories(root + "/iter_0000009");

  EXPECT_EQ(latest_checkpoint(root), root + "/iter_0000001");
  fs::remove(root + "/latest_checkpointed_iteration.txt");
  EXPECT_EQ(latest_checkpoint(root), root + "/iter_0000001");  // by scanning
  ASSERT_EQ(list_checkpoints(root).size(), 1u);

  save_checkpoint(contents(a, 2), root);
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_EQ(entries_of(root), (std::vector<std::string>{"iter_0000001", "iter_0000002", "iter_0000009",
                                                        "latest_checkpointed_iteration.txt"}));
  EXPECT_EQ(latest_checkpoint(root), root + "/iter_0000002");
}

TEST(Checkpoint, KeepLastDeletesTheOldestAndTheTrackerIsAuthoritative) {
  const std::string root = scratch_dir();
  Trained a(1, 0);
  for (int64_t step = 10; step <= 50; step += 10) save_checkpoint(contents(a, step), root, 2);
  EXPECT_EQ(entries_of(root), (std::vector<std::string>{"iter_0000040", "iter_0000050",
                                                        "latest_checkpointed_iteration.txt"}));
  save_checkpoint(contents(a, 60), root, 0);  // 0 keeps everything
  EXPECT_EQ(list_checkpoints(root).size(), 3u);

  // The tracker names the latest complete save; a newer directory it does not name (a crash
  // between the rename and the tracker update) is not picked.
  write_bytes(root + "/latest_checkpointed_iteration.txt", "40\n");
  EXPECT_EQ(latest_checkpoint(root), root + "/iter_0000040");
  write_bytes(root + "/latest_checkpointed_iteration.txt", "30");  // deleted: fall back to scanning
  EXPECT_EQ(latest_checkpoint(root), root + "/iter_0000060");
  write_bytes(root + "/latest_checkpointed_iteration.txt", "garbage");
  EXPECT_EQ(latest_checkpoint(root), root + "/iter_0000060");
  EXPECT_EQ(latest_checkpoint(scratch_dir()), std::nullopt);

  // Saving an existing step again replaces it.
  a.step(0);
  save_checkpoint(contents(a, 60), root, 1);
  EXPECT_EQ(entries_of(root), (std::vector<std::string>{"iter_0000060", "latest_checkpointed_iteration.txt"}));
  Trained b(2, 0);
  load_checkpoint(root, b.model.params(), &b.opt);
  EXPECT_TRUE(identical(a, b));
}

TEST(Checkpoint, DescribeSummarisesACheckpointOrARoot) {
  const std::string root = scratch_dir();
  Trained a(1, 1);
  save_checkpoint(contents(a, 100), root);
  const std::string s = describe_checkpoint(root);
  int64_t values = 0;
  for (int i = 0; i < a.model.params().size(); ++i) values += a.model.params().spec(i).shape.numel();
  for (const std::string& part :
       {std::string("checkpoint root"), std::string("1 checkpoint: steps 100"), root + "/iter_0000100",
        std::string("step             100"), std::string("consumed_samples 200"),
        std::string("rng              {\"offset\":123,\"seed\":7}"),
        fmt::format("{} tensors, {} values", a.model.params().size(), values), std::string("model.safetensors"),
        std::string("AdamW step 1"), std::string("tokenizer        tokenizer/ (1 file)"),
        std::string("  hidden_size: 32"), std::string("config (excerpt)")})
    EXPECT_NE(s.find(part), std::string::npos) << "'" << part << "' not in:\n" << s;
  EXPECT_EQ(describe_checkpoint(root + "/iter_0000100").find("checkpoint root"), std::string::npos);
  EXPECT_ERROR_MENTIONS(describe_checkpoint(root + "/missing"), "missing", "does not exist");
}

}  // namespace
}  // namespace foundry
