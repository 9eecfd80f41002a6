#include "foundry/train/trainer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "foundry/train/data_setup.h"
#include "foundry/train/metrics_log.h"
#include "testing.h"

namespace foundry {
namespace {

std::string scratch(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "foundry_trainer_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

RunConfig tiny_run(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> overrides = {
      "model.vocab_size=64", "model.hidden_size=32", "model.num_layers=2", "model.num_attention_heads=4",
      "model.num_query_groups=2", "model.ffn_hidden_size=48", "train.micro_batch_size=2",
      "train.global_batch_size=4", "train.seq_length=16", "train.train_iters=6", "train.lr=1e-2",
      "train.lr_warmup_iters=2", "train.lr_decay_style=cosine", "train.log_interval=2", "train.eval_interval=3",
      "train.eval_iters=2", "train.output_dir=" + out, "data.mock_data=true"};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return RunConfig::parse("", "test", overrides);
}

std::unique_ptr<Trainer> make_trainer(RunConfig cfg) {
  TrainingData d = build_training_data(cfg, stdout);
  return std::make_unique<Trainer>(cfg, std::move(d.data), d.tokenizer, stdout);
}

bool bitwise_equal(const ParamTable& a, const ParamTable& b) {
  for (int i = 0; i < a.size(); ++i)
    if (std::memcmp(a.param(i).value.data(), b.param(i).value.data(), static_cast<size_t>(a.param(i).value.nbytes())))
      return false;
  return true;
}

// N steps straight == N/2 steps, checkpoint, a fresh trainer resumes, N/2 more steps:
// identical losses and parameters, bit for bit.
void expect_bit_identical_resume(const std::vector<std::string>& extra, const std::string& name) {
  auto straight = make_trainer(tiny_run(scratch(name + "_straight"), extra));
  straight->train();
  const std::string out = scratch(name + "_resumed");
  {
    auto first = make_trainer(tiny_run(out, extra));
    EXPECT_FALSE(first->resume());
    first->train(3);
  }
  auto second = make_trainer(tiny_run(out, extra));
  ASSERT_TRUE(second->resume());
  EXPECT_EQ(second->step(), 3);
  second->train();
  ASSERT_EQ(straight->step_losses().size(), 6u);
  ASSERT_EQ(second->step_losses().size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(second->step_losses()[i], straight->step_losses()[i + 3]) << i;
  EXPECT_TRUE(bitwise_equal(second->model().params(), straight->model().params()));
  EXPECT_EQ(second->optimizer_steps(), straight->optimizer_steps());
}

TEST(Trainer, ResumeIsBitIdenticalOnSyntheticData) { expect_bit_identical_resume({}, "mock"); }

// DeepSeek-style routing: the expert bias (a buffer, updated every step) must round-trip through the
// checkpoint, or the resumed run would route differently.
const std::vector<std::string> kMoEOverrides = {
    "model.num_moe_experts=8", "model.moe_router_topk=2", "model.moe_ffn_hidden_size=16",
    "model.moe_layer_freq=[0, 1]", "model.moe_router_score_function=sigmoid",
    "model.moe_router_enable_expert_bias=true", "model.moe_router_bias_update_rate=1e-2",
    "model.moe_router_num_groups=4", "model.moe_router_group_topk=2", "model.moe_router_topk_scaling_factor=2.5",
    "model.moe_shared_expert_intermediate_size=16", "model.moe_shared_expert_gate=true",
    "model.moe_router_load_balancing_type=[seq_aux_loss, global_aux_loss]", "model.moe_aux_loss_coeff=[1e-3, 1e-2]",
    "model.moe_z_loss_coeff=1e-3", "model.moe_input_jitter_eps=0.01"};

TEST(Trainer, MoEResumeIsBitIdentical) { expect_bit_identical_resume(kMoEOverrides, "moe"); }

// The distributed optimizer in one process (a shard of everything) resumes bit-identically from
// its layout-independent checkpoints.
TEST(Trainer, DistributedOptimizerResumeIsBitIdentical) {
  expect_bit_identical_resume({"train.use_distributed_optimizer=true"}, "zero");
}

TEST(Trainer, MoEMetricsAreLogged) {
  const std::string out = scratch("moe_metrics");
  auto t = make_trainer(tiny_run(out, kMoEOverrides));
  t->train();
  const Tensor& bias = t->model().moe_layers().at(0).second->router.expert_bias;
  float moved = 0;
  for (float b : bias.to_vector()) moved += std::abs(b);
  EXPECT_GT(moved, 0.f);  // six updates of +-1e-2 (or 0) per expert
  const std::vector<MetricsRecord> records = read_metrics(out + "/metrics.jsonl");
  int logged = 0;
  for (const MetricsRecord& r : records) {
    if (!r.get("loss")) continue;
    ++logged;
    ASSERT_TRUE(r.get("moe_aux_loss") && r.get("moe_z_loss") && r.get("moe_max_load") && r.get("moe_dropped_frac"));
    EXPECT_GT(*r.get("moe_aux_loss"), 0);
    EXPECT_EQ(*r.get("moe_dropped_frac"), 0);  // dropless
    double mean = 0;
    for (int e = 0; e < 8; ++e) {
      ASSERT_TRUE(r.get("moe_load.1." + std::to_string(e))) << e;
      mean += *r.get("moe_load.1." + std::to_string(e)) / 8;
    }
    EXPECT_NEAR(mean, 1.0, 1e-12);  // loads are relative to the layer's mean
    EXPECT_FALSE(r.get("moe_load.0.0"));  // layer 0 is dense
  }
  EXPECT_GE(logged, 3);
}

TEST(Trainer, ResumeIsBitIdenticalOnPreparedText) {
  const std::string dir = scratch("text_corpus");
  {
    std::ofstream f(dir + "/corpus.txt");
    for (int d = 0; d < 60; ++d) {
      for (int l = 0; l < 1 + d % 4; ++l) f << "fortune " << d << " says line " << l << " of wisdom, more or less.\n";
      f << "%\n";
    }
  }
  expect_bit_identical_resume({"data.mock_data=false", "data.text_files=[" + dir + "/corpus.txt]",
                               "data.text_document_separator='%'", "data.tokenizer_vocab_size=300",
                               "model.vocab_size=0", "data.split=90,10,0"},
                              "text");
}

TEST(Trainer, WritesMetricsTensorBoardAndCheckpoints) {
  const std::string out = scratch("outputs");
  auto t = make_trainer(tiny_run(out, {"train.save_interval=2", "train.save_keep_last=2"}));
  t->train();
  const auto records = read_metrics(out + "/metrics.jsonl");
  int train_lines = 0, valid_lines = 0;
  for (const auto& r : records) {
    train_lines += r.get("loss").has_value();
    valid_lines += r.get("valid_loss").has_value();
  }
  EXPECT_EQ(train_lines, 4);  // steps 1, 2, 4, 6
  EXPECT_EQ(valid_lines, 2);  // steps 3, 6
  int events = 0;
  for (const auto& e : std::filesystem::directory_iterator(out))
    events += e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_EQ(events, 1);
  // keep_last = 2: iter 4 and iter 6 remain.
  EXPECT_TRUE(std::filesystem::exists(out + "/checkpoints/iter_0000006"));
  EXPECT_TRUE(std::filesystem::exists(out + "/checkpoints/iter_0000004"));
  EXPECT_FALSE(std::filesystem::exists(out + "/checkpoints/iter_0000002"));
}

TEST(Trainer, NanLossStopsOrSkipsByConfig) {
  for (const char* action : {"stop", "skip"}) {
    auto t = make_trainer(tiny_run(scratch(std::string("nan_") + action), {std::string("train.nan_action=") + action}));
    // Poison every embedding row: every loss is NaN.
    Tensor& emb = t->model().params().param(0).value;
    for (int64_t i = 0; i < emb.numel(); ++i) emb.ptr<float>()[i] = NAN;
    if (std::string(action) == "stop") {
      const std::string msg = testing::error_of([&] { t->train(); });
      EXPECT_NE(msg.find("step 1: the loss is not finite"), std::string::npos) << msg;
      EXPECT_NE(msg.find("train.nan_action=skip"), std::string::npos) << msg;
    } else {
      t->train();
      EXPECT_EQ(t->step(), 6);
      EXPECT_EQ(t->optimizer().steps(), 0);  // nothing applied
    }
  }
}

TEST(Trainer, RefusesAVocabularySmallerThanTheTokenizer) {
  const std::string dir = scratch("small_vocab");
  { std::ofstream(dir + "/c.txt") << "some text to train a tokenizer on, some text to train on.\n"; }
  RunConfig cfg = tiny_run(scratch("small_vocab_out"),
                           {"data.mock_data=false", "data.text_files=[" + dir + "/c.txt]", "model.vocab_size=64",
                            "data.tokenizer_vocab_size=300", "data.split=100,0,0"});
  EXPECT_NE(testing::error_of([&] { make_trainer(cfg); }).find("smaller than the tokenizer"), std::string::npos);
}

TEST(DataSetup, SanitizesInvalidUtf8) {
  EXPECT_EQ(sanitize_utf8("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(sanitize_utf8("a\xff" "b"), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(sanitize_utf8("\xc0\xaf"), "\xef\xbf\xbd");            // overlong '/'
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"), "\xef\xbf\xbd");        // surrogate
  EXPECT_EQ(sanitize_utf8("x\xe2\x82"), "x\xef\xbf\xbd");          // truncated at the end
  EXPECT_EQ(sanitize_utf8("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");  // emoji kept
}

}  // namespace
}  // namespace foundry
