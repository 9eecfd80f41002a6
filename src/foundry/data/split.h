// Train / validation / test split of an indexed dataset, as Megatron's --split "969,30,1"
// (parse_and_normalize_split and convert_split_vector_to_split_matrix in
// megatron/core/datasets/blended_megatron_dataset_config.py, and the index ranges in
// BlendedMegatronDatasetBuilder._build_megatron_dataset_splits):
//
//   w = weights / sum(weights)               (missing trailing weights are 0)
//   bookends c_0 = 0, c_k = w_0 + ... + w_{k-1}
//   split k = elements [round(c_k N), round(c_{k+1} N))   (round half to even, as Python's round)
//
// A split whose weight is 0 is not built (Megatron's None). GPT datasets split over sequences
// (GPTDataset.numel_low_level_dataset); with Megatron's default preprocessing a sequence is a
// document.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace foundry {

enum class Split { train = 0, valid = 1, test = 2 };
std::string_view split_name(Split s);  // "train", "valid", "test"

struct IndexRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
};

// "969,30,1" (commas, slashes or spaces between up to three non-negative numbers) -> weights
// normalised to sum 1. Malformed text, negative numbers, more than three or all-zero weights
// are foundry::Errors quoting the text.
std::array<double, 3> parse_split(std::string_view text);

// The three ranges over `num_elements`; a zero-weight split gets an empty range.
std::array<IndexRange, 3> split_ranges(const std::array<double, 3>& weights, int64_t num_elements);

}  // namespace foundry
