// Hugging Face import / export (checkpoint/hf): config.json mapping and its errors, exact round
// trips foundry -> HF -> foundry and HF -> foundry -> HF for the five architectures, and bad
// directories. The logits of imported models against the PyTorch reference are in
// hf_fixture_test.cpp.
#include <filesystem>
#include <fstream>

#include "checkpoint/scratch.h"
#include "foundry/checkpoint/hf/hf_convert.h"
#include "foundry/checkpoint/hf/hf_weights.h"
#include "foundry/checkpoint/safetensors.h"
#include "foundry/train/config.h"
#include "foundry/train/pretrained.h"
#include "testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::read_bytes;
using testing::scratch_dir;
using testing::write_bytes;

GPTConfig base_config() {
  GPTConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_attention_heads = 4;
  c.num_query_groups = 2;
  c.ffn_hidden_size = 24;
  c.rotary_base = 500000.f;
  c.layernorm_epsilon = 1e-6f;
  return c;
}

GPTConfig config_for(HfArch arch) {
  GPTConfig c = base_config();
  switch (arch) {
    case HfArch::llama:
      c.use_rope_scaling = true;
      c.rope_scaling_factor = 8.f;
      c.rope_original_max_position_embeddings = 32;
      break;
    case HfArch::qwen2:
      c.add_qkv_bias = true;
      c.share_embeddings_and_output_weights = true;
      break;
    case HfArch::qwen3:
      c.qk_layernorm = true;
      c.kv_channels = 8;  // != hidden / heads
      break;
    case HfArch::mixtral:
      c.num_moe_experts = 4;
      c.moe_router_topk = 2;
      break;
    case HfArch::qwen3_moe:
      c.qk_layernorm = true;
      c.num_moe_experts = 4;
      c.moe_router_topk = 2;
      c.moe_ffn_hidden_size = 12;
      c.moe_router_pre_softmax = true;
      c.moe_layer_pattern = {0, 1};
      break;
  }
  return resolve_gpt_config(c);
}

// A checkpoint of a randomly initialised one-process model.
std::string save_random_model(const GPTConfig& cfg, uint64_t seed, const std::string& root) {
  GPTModel model(cfg, seed);
  // Norm weights start at one: make them random too so a swapped tensor cannot go unnoticed.
  for (int i = 0; i < model.params().size(); ++i) {
    Tensor& v = model.params().param(i).value;
    const Tensor r = testing::randn(v.shape(), seed + static_cast<uint64_t>(i), 0.5f);
    v.copy_from(r);
  }
  RunConfig rc;
  rc.model = cfg;
  return save_checkpoint({.step = 3, .params = &model.params(), .trainer_state = {{"config", rc.to_yaml()}}}, root);
}

std::map<std::string, std::string> file_bytes(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out[e.path().filename().string()] = read_bytes(e.path().string());
  return out;
}

void expect_same_params(const ParamTable& a, const ParamTable& b) {
  ASSERT_EQ(a.size(), b.size());
  for (int i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a.spec(i).name, b.spec(i).name);
    const Tensor& x = a.param(i).value;
    const Tensor& y = b.at(a.spec(i).name).value;
    ASSERT_EQ(x.shape(), y.shape()) << a.spec(i).name;
    EXPECT_EQ(std::memcmp(x.data(), y.data(), static_cast<size_t>(x.nbytes())), 0) << a.spec(i).name;
  }
}

template <class F>
void expect_error(F&& f, const std::string& what) {
  const std::string e = testing::error_of(f);
  EXPECT_NE(e.find(what), std::string::npos) << "error: " << e << "\nexpected to contain: " << what;
}

class HfRoundTrip : public ::testing::TestWithParam<HfArch> {};

// foundry (f32) -> HF float32 -> foundry is the identity; -> HF bfloat16 -> foundry -> HF gives the
// same files again (the second export reproduces the first bit for bit).
TEST_P(HfRoundTrip, ExportImportExportIsExact) {
  const HfArch arch = GetParam();
  const std::string dir = scratch_dir();
  const GPTConfig cfg = config_for(arch);
  EXPECT_EQ(default_hf_arch(cfg), arch);
  const std::string ckpt = save_random_model(cfg, 7, dir + "/orig");

  export_hf_checkpoint(ckpt, dir + "/hf32", {.dtype = "float32"});
  const json config = json::parse(read_bytes(dir + "/hf32/config.json"));
  EXPECT_EQ(config["architectures"][0], hf_class_name(arch));
  EXPECT_EQ(config["torch_dtype"], "float32");
  const std::string back = import_hf_checkpoint(dir + "/hf32", dir + "/back");
  const Pretrained a = load_pretrained(ckpt), b = load_pretrained(back);
  EXPECT_EQ(b.config.model.num_moe_experts, cfg.num_moe_experts);
  EXPECT_EQ(b.config.model.kv_channels, cfg.kv_channels);
  EXPECT_EQ(b.config.model.moe_layer_pattern, cfg.moe_layer_pattern);
  EXPECT_EQ(b.config.model.moe_router_pre_softmax, cfg.moe_router_pre_softmax);
  EXPECT_EQ(b.config.model.use_rope_scaling, cfg.use_rope_scaling);
  expect_same_params(a.model->params(), b.model->params());

  // Small shards: the index form, as transformers writes it for large models.
  export_hf_checkpoint(ckpt, dir + "/hf16", {.dtype = "bfloat16", .max_shard_bytes = 4000});
  ASSERT_TRUE(fs::exists(dir + "/hf16/model.safetensors.index.json"));
  const std::string mid = import_hf_checkpoint(dir + "/hf16", dir + "/mid");
  export_hf_checkpoint(mid, dir + "/hf16b", {.max_shard_bytes = 4000});  // dtype: as imported
  EXPECT_EQ(file_bytes(dir + "/hf16"), file_bytes(dir + "/hf16b"));
}

INSTANTIATE_TEST_SUITE_P(Architectures, HfRoundTrip,
                         ::testing::Values(HfArch::llama, HfArch::qwen2, HfArch::qwen3, HfArch::mixtral,
                                           HfArch::qwen3_moe),
                         [](const auto& info) { return hf_model_type(info.param); });

// The q/k/v rows land in Megatron's grouped layout: group g = [q heads gG..gG+G-1; k_g; v_g].
TEST(HfWeights, QkvRowsFollowMegatronsGroupedLayout) {
  const GPTConfig c = config_for(HfArch::llama);  // NH 4, NKV 2, HD 4: G = 2
  const std::vector<HfTensorMapping> maps = hf_tensor_mappings(c, HfArch::llama);
  const auto find = [&](const std::string& n) {
    for (const HfTensorMapping& m : maps)
      if (m.hf_name == n) return m;
    ADD_FAILURE() << n;
    return HfTensorMapping{};
  };
  const HfTensorMapping q = find("model.layers.1.self_attn.q_proj.weight");
  const HfTensorMapping k = find("model.layers.1.self_attn.k_proj.weight");
  const HfTensorMapping v = find("model.layers.1.self_attn.v_proj.weight");
  EXPECT_EQ(q.param, "decoder.layers.1.self_attention.linear_qkv.weight");
  ASSERT_EQ(q.rows.size(), 2u);
  // group 0: q rows 0..7 -> 0..7, k 0..3 -> 8..11, v 0..3 -> 12..15; group 1 starts at 16.
  EXPECT_EQ(q.rows[0].param_begin, 0);
  EXPECT_EQ(q.rows[0].count, 8);
  EXPECT_EQ(k.rows[0].param_begin, 8);
  EXPECT_EQ(v.rows[0].param_begin, 12);
  EXPECT_EQ(q.rows[1].hf_begin, 8);
  EXPECT_EQ(q.rows[1].param_begin, 16);
  EXPECT_EQ(k.rows[1].hf_begin, 4);
  EXPECT_EQ(k.rows[1].param_begin, 24);
  EXPECT_EQ(v.rows[1].param_begin, 28);
  const HfTensorMapping gate = find("model.layers.0.mlp.gate_proj.weight");
  const HfTensorMapping up = find("model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(gate.rows[0].param_begin, 0);
  EXPECT_EQ(up.rows[0].param_begin, c.ffn_hidden_size);
}

json llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", 40},
          {"hidden_size", 16},
          {"intermediate_size", 24},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"hidden_act", "silu"},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 500000.0},
          {"rope_scaling",
           {{"rope_type", "llama3"},
            {"factor", 32.0},
            {"low_freq_factor", 1.0},
            {"high_freq_factor", 4.0},
            {"original_max_position_embeddings", 8192}}},
          {"tie_word_embeddings", true},
          {"torch_dtype", "bfloat16"}};
}

TEST(HfConfig, LlamaFieldsMapToMegatronNames) {
  const GPTConfig g = gpt_config_from_hf(llama_config(), "config.json");
  EXPECT_EQ(g.num_layers, 2);
  EXPECT_EQ(g.num_query_groups, 2);
  EXPECT_EQ(g.kv_channels, 4);
  EXPECT_EQ(g.ffn_hidden_size, 24);
  EXPECT_FLOAT_EQ(g.layernorm_epsilon, 1e-5f);
  EXPECT_FLOAT_EQ(g.rotary_base, 500000.f);
  EXPECT_TRUE(g.use_rope_scaling);
  EXPECT_FLOAT_EQ(g.rope_scaling_factor, 32.f);
  EXPECT_EQ(g.rope_original_max_position_embeddings, 8192);
  EXPECT_TRUE(g.share_embeddings_and_output_weights);
  EXPECT_FALSE(g.qk_layernorm);
  // transformers 5 writes the RoPE settings as rope_parameters.
  json v5 = llama_config();
  v5.erase("rope_scaling");
  v5.erase("rope_theta");
  v5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  const GPTConfig g5 = gpt_config_from_hf(v5, "config.json");
  EXPECT_FLOAT_EQ(g5.rotary_base, 1e6f);
  EXPECT_FALSE(g5.use_rope_scaling);
  // Written back, the fields come out as the decimals they were.
  const json out = hf_config_from_gpt(g, HfArch::llama, "bfloat16", llama_config(), 64);
  EXPECT_EQ(out["rms_norm_eps"].dump(), "1e-05");
  EXPECT_EQ(out["rope_scaling"], llama_config()["rope_scaling"]);
}

TEST(HfConfig, Qwen3MoeLayerPatternAndRouterOrder) {
  json c = {{"architectures", {"Qwen3MoeForCausalLM"}}, {"vocab_size", 40}, {"hidden_size", 16},
            {"intermediate_size", 24}, {"num_hidden_layers", 4}, {"num_attention_heads", 4},
            {"num_key_value_heads", 2}, {"head_dim", 8}, {"num_experts", 4}, {"num_experts_per_tok", 2},
            {"moe_intermediate_size", 12}, {"norm_topk_prob", false}, {"decoder_sparse_step", 2},
            {"mlp_only_layers", {3}}};
  const GPTConfig g = gpt_config_from_hf(c, "config.json");
  EXPECT_EQ(g.moe_layer_pattern, (std::vector<int64_t>{0, 1, 0, 0}));
  EXPECT_TRUE(g.moe_router_pre_softmax);
  EXPECT_TRUE(g.qk_layernorm);
  EXPECT_EQ(g.moe_ffn_hidden_size, 12);
  // The pattern survives export: the base's step and list when they still describe it.
  const json out = hf_config_from_gpt(g, HfArch::qwen3_moe, "bfloat16", c, 64);
  EXPECT_EQ(out["decoder_sparse_step"], 2);
  EXPECT_EQ(out["mlp_only_layers"], json::array({3}));
  EXPECT_EQ(out["norm_topk_prob"], false);
  const json fresh = hf_config_from_gpt(g, HfArch::qwen3_moe, "bfloat16", json::object(), 64);
  EXPECT_EQ(fresh["decoder_sparse_step"], 1);
  EXPECT_EQ(fresh["mlp_only_layers"], json::array({0, 2, 3}));
}

TEST(HfConfig, UnsupportedSettingsAreErrorsNamingTheKey) {
  auto fails_with = [](json c, const std::string& what) {
    const std::string e = testing::error_of([&] { gpt_config_from_hf(c, "some/config.json"); });
    EXPECT_NE(e.find(what), std::string::npos) << e;
    EXPECT_NE(e.find("some/config.json"), std::string::npos) << e;
  };
  json c = llama_config();
  c["architectures"] = {"GPT2LMHeadModel"};
  fails_with(c, "GPT2LMHeadModel");
  c = llama_config();
  c["hidden_act"] = "gelu";
  fails_with(c, "hidden_act \"gelu\"");
  c = llama_config();
  c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  fails_with(c, "rope_scaling type \"yarn\"");
  c = llama_config();
  c.erase("num_hidden_layers");
  fails_with(c, "\"num_hidden_layers\" is missing");
  c = llama_config();
  c["attention_bias"] = true;
  fails_with(c, "attention_bias");
  c = llama_config();
  c["architectures"] = {"MixtralForCausalLM"};
  c["sliding_window"] = 4096;
  fails_with(c, "sliding_window");
  c = llama_config();
  c["num_key_value_heads"] = 3;
  fails_with(c, "num_query_groups");
  // Export refuses what the architecture cannot hold.
  GPTConfig moe = config_for(HfArch::mixtral);
  moe.moe_router_pre_softmax = true;
  expect_error([&] { check_hf_representable(moe, HfArch::mixtral); }, "pre_softmax");
  GPTConfig dense = config_for(HfArch::llama);
  expect_error([&] { check_hf_representable(dense, HfArch::qwen3); }, "qk_layernorm");
  expect_error([] { hf_arch_from_name("falcon"); }, "falcon");
}

TEST(HfConvert, BadDirectoriesAreClearErrors) {
  const std::string dir = scratch_dir();
  const std::string ckpt = save_random_model(config_for(HfArch::llama), 3, dir + "/orig");
  export_hf_checkpoint(ckpt, dir + "/hf", {.max_shard_bytes = 3000});
  expect_error([&] { import_hf_checkpoint(dir + "/nothing", dir + "/x"); }, "does not exist");
  expect_error([&] { export_hf_checkpoint(ckpt, dir + "/hf", {}); }, "not an empty directory");

  auto broken = [&](const std::string& name) {
    const std::string d = dir + "/" + name;
    fs::copy(dir + "/hf", d, fs::copy_options::recursive);
    return d;
  };
  // A shard the index names is gone.
  std::string d = broken("missing_shard");
  const std::string shard =
      json::parse(read_bytes(d + "/model.safetensors.index.json"))["weight_map"]["lm_head.weight"].get<std::string>();
  fs::remove(d + "/" + shard);
  expect_error([&] { import_hf_checkpoint(d, dir + "/x"); }, shard);
  // config.json says more layers than the weights hold.
  d = broken("more_layers");
  json c = json::parse(read_bytes(d + "/config.json"));
  c["num_hidden_layers"] = 3;
  write_bytes(d + "/config.json", c.dump());
  expect_error([&] { import_hf_checkpoint(d, dir + "/x"); }, "model.layers.2.self_attn.q_proj.weight");
  // A different hidden size: shapes disagree.
  d = broken("wrong_shape");
  c = json::parse(read_bytes(d + "/config.json"));
  c["intermediate_size"] = 32;
  write_bytes(d + "/config.json", c.dump());
  expect_error([&] { import_hf_checkpoint(d, dir + "/x"); }, "config.json implies");
  // No config.json at all.
  d = broken("no_config");
  fs::remove(d + "/config.json");
  expect_error([&] { import_hf_checkpoint(d, dir + "/x"); }, "no config.json");
  // Nothing was written for the failed imports.
  EXPECT_FALSE(fs::exists(dir + "/x"));
}

}  // namespace
}  // namespace foundry
