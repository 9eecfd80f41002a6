// Typed run configuration loaded from YAML recipes (configs/*.yaml) with `section.key=value`
// overrides. Keys are named as in Megatron's TransformerConfig / arguments. Unknown keys, wrong
// types and impossible values are errors that name the key (and suggest the closest valid one).
#pragma once

#include <string>
#include <vector>

#include "foundry/models/gpt/gpt_model.h"

namespace foundry {

struct TrainConfig {
  int64_t micro_batch_size = 2;
  int64_t seq_length = 64;
  int64_t train_iters = 100;
  float lr = 1e-3f;
  float weight_decay = 0.1f;
  float adam_beta1 = 0.9f;
  float adam_beta2 = 0.95f;
  float adam_eps = 1e-8f;
  float clip_grad = 1.0f;
  uint64_t seed = 1234;
  int64_t log_interval = 10;
  int64_t threads = 0;  // 0: OMP_NUM_THREADS or all cores
};

struct RunConfig {
  GPTConfig model;
  TrainConfig train;

  // Parses YAML text (source names the file in errors), then applies overrides in order.
  static RunConfig parse(const std::string& yaml_text, const std::string& source,
                         const std::vector<std::string>& overrides = {});
  static RunConfig load(const std::string& path, const std::vector<std::string>& overrides = {});
  void apply_override(const std::string& assignment);  // "train.lr=3e-4"
  std::string to_yaml() const;
};

// The built-in default recipe (configs/default.yaml, embedded at build time).
const char* default_recipe_yaml();

}  // namespace foundry
