#include "foundry/train/config.h"

#include <filesystem>

#include "testing.h"

namespace foundry {
namespace {

using testing::error_of;

TEST(RunConfig, ParsesSectionsAndOverrides) {
  RunConfig c = RunConfig::parse("model:\n  hidden_size: 96\n  bf16: true\ntrain:\n  lr: 3e-4\n", "r.yaml",
                                 {"train.micro_batch_size=7", "model.num_layers=3"});
  EXPECT_EQ(c.model.hidden_size, 96);
  EXPECT_TRUE(c.model.bf16);
  EXPECT_FLOAT_EQ(c.train.lr, 3e-4f);
  EXPECT_EQ(c.train.micro_batch_size, 7);
  EXPECT_EQ(c.model.num_layers, 3);
  // Printing and re-parsing gives the same configuration.
  RunConfig again = RunConfig::parse(c.to_yaml(), "printed");
  EXPECT_EQ(again.to_yaml(), c.to_yaml());
}

TEST(RunConfig, UnknownKeysSuggestTheClosest) {
  EXPECT_EQ(error_of([] { RunConfig::parse("model:\n  hiden_size: 3\n", "r.yaml"); }),
            "r.yaml: unknown config key 'model.hiden_size' (did you mean 'model.hidden_size'?)");
  EXPECT_EQ(error_of([] { RunConfig::parse("", "r.yaml", {"trian.lr=1"}); }),
            "override: unknown config section 'trian' (did you mean 'train'?)");
}

TEST(RunConfig, WrongTypesAndImpossibleValuesNameTheKey) {
  EXPECT_EQ(error_of([] { RunConfig::parse("train:\n  lr: fast\n", "r.yaml"); }),
            "config key 'train.lr': value 'fast' is not a valid number");
  EXPECT_NE(error_of([] { RunConfig::parse("", "r.yaml", {"data.text_document_separator=%"}); })
                .find("config key 'data.text_document_separator': no value"),
            std::string::npos);
  EXPECT_EQ(error_of([] { RunConfig::parse("train:\n  micro_batch_size: 0\n", "r.yaml"); }),
            "train.micro_batch_size must be positive, got 0");
  EXPECT_NE(error_of([] { RunConfig::parse("model: [1, 2\n", "bad.yaml"); }).find("bad.yaml: YAML error"),
            std::string::npos);
  EXPECT_NE(error_of([] { RunConfig::load("/nonexistent/recipe.yaml"); }).find("/nonexistent/recipe.yaml"),
            std::string::npos);
}

TEST(RunConfig, MoEKeys) {
  RunConfig c = RunConfig::parse(
      "model:\n  num_moe_experts: 8\n  moe_router_topk: 2\n  moe_ffn_hidden_size: 64\n"
      "  moe_layer_freq: 2\n  moe_aux_loss_coeff: 1.0e-2\n  moe_router_load_balancing_type: aux_loss\n",
      "r.yaml");
  EXPECT_EQ(c.model.num_moe_experts, 8);
  EXPECT_EQ(c.model.moe_layer_freq, 2);
  EXPECT_TRUE(c.model.moe_layer_pattern.empty());
  EXPECT_EQ(c.model.moe_aux_loss_coeff, std::vector<float>{1e-2f});
  EXPECT_EQ(c.model.moe_router_load_balancing_type, std::vector<std::string>{"aux_loss"});
  // Lists, and Megatron's pattern string for moe_layer_freq.
  c.apply_override("model.num_layers=4");
  c.apply_override("model.moe_layer_freq=[0, 1, 1, 1]");
  EXPECT_EQ(c.model.moe_layer_pattern, (std::vector<int64_t>{0, 1, 1, 1}));
  c.apply_override("model.moe_layer_freq=([0]*2+[1]*2)");
  EXPECT_EQ(c.model.moe_layer_pattern, (std::vector<int64_t>{0, 0, 1, 1}));
  c.apply_override("model.moe_layer_freq=\"[1,0]*2\"");
  EXPECT_EQ(c.model.moe_layer_pattern, (std::vector<int64_t>{1, 0, 1, 0}));
  c.apply_override("model.moe_router_load_balancing_type=[seq_aux_loss, aux_loss]");
  c.apply_override("model.moe_aux_loss_coeff=[1e-4, 1e-2]");
  EXPECT_EQ(c.model.moe_aux_loss_coeff, (std::vector<float>{1e-4f, 1e-2f}));
  // The printed recipe reads back to the same settings.
  const RunConfig again = RunConfig::parse(c.to_yaml(), "printed");
  EXPECT_EQ(again.model.moe_layer_pattern, c.model.moe_layer_pattern);
  EXPECT_EQ(again.model.moe_aux_loss_coeff, c.model.moe_aux_loss_coeff);
  EXPECT_EQ(again.model.moe_router_load_balancing_type, c.model.moe_router_load_balancing_type);
  c.apply_override("model.moe_layer_freq=3");
  EXPECT_TRUE(c.model.moe_layer_pattern.empty());
  EXPECT_EQ(RunConfig::parse(c.to_yaml(), "printed").model.moe_layer_freq, 3);
}

TEST(RunConfig, MoEMistakesNameTheKey) {
  const std::string moe = "model:\n  num_layers: 4\n  num_moe_experts: 8\n";
  EXPECT_ERROR_MENTIONS(RunConfig::parse(moe + "  moe_layer_freq: \"[0]*3+\"\n", "r.yaml"), "model.moe_layer_freq",
                        "[0]*3+");
  EXPECT_ERROR_MENTIONS(RunConfig::parse(moe + "  moe_layer_freq: [0, 1]\n", "r.yaml"), "model.moe_layer_freq",
                        "2 entries");
  EXPECT_ERROR_MENTIONS(RunConfig::parse(moe + "  moe_router_topk: 9\n", "r.yaml"), "model: MoE router settings");
  EXPECT_ERROR_MENTIONS(RunConfig::parse(moe + "  moe_router_score_function: tanh\n", "r.yaml"), "tanh");
  EXPECT_ERROR_MENTIONS(RunConfig::parse(moe + "  moe_aux_loss_coeff: lots\n", "r.yaml"), "model.moe_aux_loss_coeff",
                        "lots");
  EXPECT_ERROR_MENTIONS(RunConfig::parse(moe + "  moe_shared_expert_gate: true\n", "r.yaml"),
                        "model.moe_shared_expert_gate");
  EXPECT_ERROR_MENTIONS(RunConfig::parse("model:\n  num_moe_experts: -1\n", "r.yaml"), "model.num_moe_experts");
}

// Qwen2's QKV bias and Llama 3.1's rope_scaling (Megatron --add-qkv-bias, --use-rope-scaling,
// --rope-scaling-factor).
TEST(RunConfig, QkvBiasAndRopeScalingKeys) {
  RunConfig d = RunConfig::parse("", "r.yaml");
  EXPECT_FALSE(d.model.add_qkv_bias);
  EXPECT_FALSE(d.model.use_rope_scaling);
  EXPECT_FLOAT_EQ(d.model.rope_scaling_factor, 8.f);
  EXPECT_FLOAT_EQ(d.model.rope_low_freq_factor, 1.f);
  EXPECT_FLOAT_EQ(d.model.rope_high_freq_factor, 4.f);
  EXPECT_EQ(d.model.rope_original_max_position_embeddings, 8192);
  RunConfig c = RunConfig::parse(
      "model:\n  add_qkv_bias: true\n  use_rope_scaling: true\n  rope_scaling_factor: 32\n"
      "  rope_low_freq_factor: 2\n  rope_high_freq_factor: 8\n",
      "r.yaml", {"model.rope_original_max_position_embeddings=4096"});
  EXPECT_TRUE(c.model.add_qkv_bias);
  EXPECT_TRUE(c.model.use_rope_scaling);
  EXPECT_FLOAT_EQ(c.model.rope_scaling_factor, 32.f);
  EXPECT_FLOAT_EQ(c.model.rope_low_freq_factor, 2.f);
  EXPECT_FLOAT_EQ(c.model.rope_high_freq_factor, 8.f);
  EXPECT_EQ(c.model.rope_original_max_position_embeddings, 4096);
  const RunConfig again = RunConfig::parse(c.to_yaml(), "printed");
  EXPECT_EQ(again.to_yaml(), c.to_yaml());
  EXPECT_TRUE(again.model.add_qkv_bias);
  EXPECT_EQ(again.model.rope_original_max_position_embeddings, 4096);
  // Mistakes name the key.
  EXPECT_ERROR_MENTIONS(RunConfig::parse("model:\n  add_qkv_bias: maybe\n", "r.yaml"), "model.add_qkv_bias", "maybe");
  EXPECT_ERROR_MENTIONS(RunConfig::parse("model:\n  use_rope_scaling: true\n  rope_scaling_factor: 0\n", "r.yaml"),
                        "model.rope_scaling_factor");
  EXPECT_ERROR_MENTIONS(RunConfig::parse("model:\n  use_rope_scaling: true\n  rope_high_freq_factor: 1\n", "r.yaml"),
                        "model.rope_high_freq_factor", "model.rope_low_freq_factor");
  EXPECT_ERROR_MENTIONS(
      RunConfig::parse("model:\n  use_rope_scaling: true\n  rope_original_max_position_embeddings: -5\n", "r.yaml"),
      "model.rope_original_max_position_embeddings");
}

TEST(RunConfig, EveryShippedRecipeParsesAndValidates) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(std::string(FOUNDRY_SOURCE_DIR) + "/configs")) {
    // configs/curate/ holds `foundry curate` configs (tests/video/curate_config_test.cpp).
    if (e.path().extension() != ".yaml" || e.path().parent_path().filename() == "curate") continue;
    SCOPED_TRACE(e.path().string());
    const RunConfig c = RunConfig::load(e.path().string());
    EXPECT_NO_THROW(resolve_gpt_config(c.model, /*require_vocab=*/false));
    ++n;
  }
  EXPECT_GE(n, 8);
}

TEST(RunConfig, EmbeddedDefaultAndShippedRecipesParse) {
  RunConfig d = RunConfig::parse(default_recipe_yaml(), "default");
  EXPECT_GT(d.train.train_iters, 0);
  EXPECT_EQ(d.model.num_moe_experts, 8);  // the default is a small Mixtral-style MoE
  RunConfig b = RunConfig::load(std::string(FOUNDRY_SOURCE_DIR) + "/configs/bench/dense-small.yaml");
  EXPECT_EQ(b.model.hidden_size, 512);
  EXPECT_EQ(b.model.vocab_size, 32768);
}

}  // namespace
}  // namespace foundry
