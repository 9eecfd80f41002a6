#include "foundry/train/config.h"

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

TEST(RunConfig, EmbeddedDefaultAndShippedRecipesParse) {
  RunConfig d = RunConfig::parse(default_recipe_yaml(), "default");
  EXPECT_GT(d.train.train_iters, 0);
  RunConfig b = RunConfig::load(std::string(FOUNDRY_SOURCE_DIR) + "/configs/bench/dense-small.yaml");
  EXPECT_EQ(b.model.hidden_size, 512);
  EXPECT_EQ(b.model.vocab_size, 32768);
}

}  // namespace
}  // namespace foundry
