// Builds the train / valid / test sample datasets of a GPT run from Megatron-style data
// arguments, as Megatron-Core's BlendedMegatronDatasetBuilder does
// (megatron/core/datasets/blended_megatron_dataset_builder.py):
//
//   --data-path PREFIX                 one indexed dataset
//   --data-path W1 PREFIX1 W2 PREFIX2  a weighted blend (weights normalised)
//   --split 969,30,1                   each indexed dataset split by sequence ranges (split.h)
//
// One dataset: split k is a GPTDataset of num_samples[k] samples over range k. A blend: split k
// of every dataset is a GPTDataset of blended_component_sizes() samples, mixed by a
// BlendedDataset of num_samples[k]. Every GPTDataset uses the same seed (as Megatron).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "foundry/data/sample_dataset.h"
#include "foundry/data/split.h"

namespace foundry {

struct DataBlend {
  std::vector<std::string> prefixes;
  std::vector<double> weights;  // one per prefix (1 for a single prefix)
};

// Megatron's --data-path words: one prefix, or pairs "weight prefix". Errors name the word.
DataBlend parse_data_path(const std::vector<std::string>& words);

struct GPTDataConfig {
  DataBlend blend;
  std::string split = "969,30,1";
  int64_t seq_length = 0;
  uint64_t seed = 1234;
};

// num_samples[k] samples for split k (train, valid, test); a split with 0 requested samples or
// weight 0 is not built (nullptr).
std::array<std::shared_ptr<const SampleDataset>, 3> build_gpt_datasets(
    const GPTDataConfig& cfg, const std::array<int64_t, 3>& num_samples);

}  // namespace foundry
