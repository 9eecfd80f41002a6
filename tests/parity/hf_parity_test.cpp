// Hugging Face directories written by tools/ref/write_hf_fixtures.py (tests/fixtures/hf/<name>:
// config.json, sharded safetensors + index, tokenizer.json) for Llama (bf16, llama3 RoPE scaling),
// Qwen2 (fp16, q/k/v biases, tied), Qwen3 (fp32, head_dim != H / NH, q/k norms), Mixtral (bf16)
// and Qwen3-MoE (bf16, norm_topk_prob false, a dense layer): imported with checkpoint/hf, the
// model gives the logits of tools/ref/hf_models.py (float64, transformers' forward); HF ->
// foundry -> HF reproduces every tensor bit for bit, in its dtype, and the config.
#include <filesystem>
#include <fstream>

#include "checkpoint/scratch.h"
#include "fixture.h"
#include "foundry/checkpoint/hf/hf_convert.h"
#include "foundry/checkpoint/safetensors.h"
#include "foundry/data/tokenizer.h"
#include "foundry/train/pretrained.h"
#include "foundry/train/upcycling.h"
#include "testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::Fixture;

std::string fixture_dir(const std::string& name) { return std::string(FOUNDRY_FIXTURES_DIR) + "/hf/" + name; }

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::string scratch(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("foundry_hf_parity_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d.string();
}

class HfParity : public ::testing::TestWithParam<const char*> {};

TEST_P(HfParity, ImportedModelGivesTheReferenceLogits) {
  const std::string name = GetParam();
  const Fixture fx = Fixture::load(std::string(FOUNDRY_FIXTURES_DIR) + "/hf_logits.bin");
  const HfModel m = read_hf_model(fixture_dir(name));
  EXPECT_EQ(hf_model_type(m.arch), name);
  const Tensor& tokens = fx.at(name + ".tokens");
  const Tensor& expected = fx.at(name + ".logits");
  Context ctx;
  GPTModel::Saved saved;
  const Tensor logits = m.model->forward(ctx, tokens, SequenceLayout::uniform(1, tokens.shape()[0]), saved);
  ASSERT_EQ(logits.shape(), expected.shape());
  // f32 against a float64 reference on the same (rounded) weights.
  EXPECT_TRUE(testing::allclose(logits, expected, 1e-4, 1e-4)) << name;
  EXPECT_TRUE(testing::close_in_norm(logits, expected, 1e-5)) << name;
}

TEST_P(HfParity, RoundTripThroughFoundryIsBitIdentical) {
  const std::string name = GetParam();
  const std::string dir = scratch(name), src = fixture_dir(name);
  const std::string ckpt = import_hf_checkpoint(src, dir + "/ckpt");
  // The checkpoint is an ordinary one: foundry loads it with its tokenizer.
  const Pretrained p = load_pretrained(ckpt);
  ASSERT_NE(p.tokenizer, nullptr);
  EXPECT_EQ(p.tokenizer->encode("hello world"), Tokenizer::load(src + "/tokenizer.json")->encode("hello world"));

  export_hf_checkpoint(ckpt, dir + "/hf", {});
  const ShardedSafetensors a(src), b(dir + "/hf");
  std::vector<std::string> na = a.names(), nb = b.names();
  std::sort(na.begin(), na.end());
  std::sort(nb.begin(), nb.end());
  ASSERT_EQ(na, nb);
  for (const std::string& t : na) {
    EXPECT_EQ(a.entry(t).dtype_name, b.entry(t).dtype_name) << t;
    EXPECT_EQ(a.entry(t).shape, b.entry(t).shape) << t;
    const Tensor x = a.read(t), y = b.read(t);
    EXPECT_EQ(std::memcmp(x.data(), y.data(), static_cast<size_t>(x.nbytes())), 0) << t;
  }
  // config.json: the same object (transformers' fields, token ids and all).
  json ca = read_json(src + "/config.json"), cb = read_json(dir + "/hf/config.json");
  EXPECT_EQ(ca, cb) << "source:\n" << ca.dump(2) << "\nexported:\n" << cb.dump(2);
  EXPECT_EQ(testing::read_bytes(src + "/tokenizer.json"), testing::read_bytes(dir + "/hf/tokenizer.json"));
  fs::remove_all(dir);
}

// The Llama 3 -> Mixtral recipe through Hugging Face formats: import the Llama fixture, upcycle it
// into 4 experts top-2 (topk-then-softmax: exactly the dense model), export as Mixtral; the
// Mixtral directory, read back, gives the Llama reference logits.
TEST(HfUpcycle, UpcycledLlamaExportsAsMixtralWithTheDenseLogits) {
  const std::string dir = scratch("upcycle");
  const std::string dense = import_hf_checkpoint(fixture_dir("llama"), dir + "/dense");
  OfflineUpcycle job;
  job.dense = dense;
  job.options.num_experts = 4;
  job.options.topk = 2;
  job.out = dir + "/moe";
  upcycle_checkpoint(job);
  export_hf_checkpoint(dir + "/moe", dir + "/mixtral", {.dtype = "float32"});
  const json config = read_json(dir + "/mixtral/config.json");
  EXPECT_EQ(config["architectures"][0], "MixtralForCausalLM");
  EXPECT_EQ(config["num_local_experts"], 4);
  EXPECT_EQ(config["rope_scaling"]["rope_type"], "llama3");
  const HfModel m = read_hf_model(dir + "/mixtral");
  ASSERT_EQ(m.arch, HfArch::mixtral);
  const Fixture fx = Fixture::load(std::string(FOUNDRY_FIXTURES_DIR) + "/hf_logits.bin");
  const Tensor& tokens = fx.at("llama.tokens");
  Context ctx;
  GPTModel::Saved saved;
  const Tensor logits = m.model->forward(ctx, tokens, SequenceLayout::uniform(1, tokens.shape()[0]), saved);
  EXPECT_TRUE(testing::allclose(logits, fx.at("llama.logits"), 1e-4, 1e-4));
  EXPECT_TRUE(testing::close_in_norm(logits, fx.at("llama.logits"), 1e-5));
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Architectures, HfParity,
                         ::testing::Values("llama", "qwen2", "qwen3", "mixtral", "qwen3_moe"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace foundry
