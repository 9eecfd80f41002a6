// Typed run configuration loaded from YAML recipes (configs/*.yaml) with `section.key=value`
// overrides. Keys are named as in Megatron's TransformerConfig / arguments. Unknown keys, wrong
// types and impossible values are errors that name the key (and suggest the closest valid one).
#pragma once

#include <string>
#include <cstdint>
#include <vector>

#include "foundry/comm/mesh.h"
#include "foundry/models/gpt/gpt_model.h"

namespace foundry {

struct TrainConfig {
  int64_t micro_batch_size = 2;
  int64_t global_batch_size = 0;  // 0: = micro_batch_size (no gradient accumulation)
  int64_t seq_length = 64;
  int64_t train_iters = 100;
  // Learning rate (Megatron's OptimizerParamScheduler, optim/lr_schedule.h).
  float lr = 1e-3f;
  float min_lr = 0.f;
  int64_t lr_warmup_iters = 0;
  int64_t lr_decay_iters = 0;  // 0: train_iters
  std::string lr_decay_style = "constant";  // constant, linear, cosine, inverse-square-root, WSD
  int64_t lr_wsd_decay_iters = 0;
  std::string lr_wsd_decay_style = "exponential";
  float weight_decay = 0.1f;
  float adam_beta1 = 0.9f;
  float adam_beta2 = 0.95f;
  float adam_eps = 1e-8f;
  float clip_grad = 1.0f;
  uint64_t seed = 1234;
  int64_t log_interval = 10;
  int64_t eval_interval = 0;  // 0: no evaluation
  int64_t eval_iters = 10;
  int64_t save_interval = 0;  // 0: save only at the end
  int64_t save_keep_last = 3;  // checkpoints kept (0: all)
  std::string output_dir = "runs/default";  // checkpoints, metrics.jsonl, TensorBoard events
  std::string load;  // checkpoint directory to resume from; empty: the latest in output_dir
  std::string nan_action = "stop";  // a NaN/Inf loss or gradient: stop, or skip the step
  int64_t threads = 0;  // 0: OMP_NUM_THREADS or all cores
  // ZeRO-1 over the data-parallel ranks (Megatron's --use-distributed-optimizer): AdamW state and
  // fp32 master weights sharded, gradients reduce-scattered, parameters all-gathered.
  bool use_distributed_optimizer = false;
  // Megatron's --overlap-grad-reduce / --ddp-bucket-size: data-parallel gradient sums in buckets of
  // ddp_bucket_size parameters, started during the last microbatch's backward (replicated AdamW).
  bool overlap_grad_reduce = false;
  int64_t ddp_bucket_size = 40'000'000;
  // Every rank prints its own log lines (prefixed "[rank R]"); default: world rank 0 only.
  bool log_all_ranks = false;

  int64_t num_microbatches() const {
    return global_batch_size == 0 ? 1 : global_batch_size / micro_batch_size;
  }
};

// Where training text comes from (Megatron's --data-path / --split / --mock-data).
struct DataConfig {
  // Megatron blend: prefixes of indexed datasets, optionally weighted ("0.7 a 0.3 b").
  std::vector<std::string> data_path;
  std::string split = "969,30,1";  // train, valid, test proportions of documents
  std::string tokenizer_model;     // tokenizer path (see data/tokenizer.h)
  bool mock_data = false;          // the built-in synthetic corpus instead of files
  // Raw text to prepare when data_path is empty: a tokenizer is trained on it (unless
  // tokenizer_model is given) and it is preprocessed into output_dir/data.
  std::vector<std::string> text_files;
  std::string text_document_separator;  // a line holding only this ends a document ("%": fortunes)
  int64_t tokenizer_vocab_size = 1024;
};

struct RunConfig {
  GPTConfig model;
  TrainConfig train;
  DataConfig data;
  ParallelConfig parallel;  // data-parallel size = world / (TP x CP x PP), from the launcher

  // Parses YAML text (source names the file in errors), then applies overrides in order.
  static RunConfig parse(const std::string& yaml_text, const std::string& source,
                         const std::vector<std::string>& overrides = {});
  static RunConfig load(const std::string& path, const std::vector<std::string>& overrides = {});
  void apply_override(const std::string& assignment);  // "train.lr=3e-4", then validates
  void set_from_assignment(const std::string& assignment);  // the same without validation
  std::string to_yaml() const;
};

// The built-in default recipe (configs/default.yaml, embedded at build time).
const char* default_recipe_yaml();

}  // namespace foundry
