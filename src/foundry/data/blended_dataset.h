// BlendedDataset: a weighted mix of sample datasets, with the semantics of Megatron-Core's
// BlendedDataset (megatron/core/datasets/blended_dataset.py) and build_blending_indices
// (megatron/core/datasets/helpers.cpp). Weights are normalised to sum to 1; sample i goes to
// the dataset whose achieved count lags its target the most:
//
//   d(i) = argmax_d ( w_d * max(i, 1) - count_d(i) )   (ties: the lowest d)
//   dataset_sample_index(i) = count_{d(i)}(i);  count_{d(i)} += 1
//
// so after any prefix of n samples every dataset holds its share w_d n to within one sample.
// Deterministic: no random numbers are drawn. Each component is asked for
// blended_component_sizes() samples (Megatron's 0.5% surplus) so the blend never runs out.
#pragma once

#include <memory>
#include <vector>

#include "foundry/data/sample_dataset.h"

namespace foundry {

// Megatron's _get_size_per_split_per_dataset: ceil(ceil(size * w_d) * (1 + surplus)) with the
// weights normalised.
std::vector<int64_t> blended_component_sizes(const std::vector<double>& weights, int64_t size,
                                             double surplus = 0.005);

class BlendedDataset : public SampleDataset {
 public:
  // All datasets must share sample_length(); each must hold the samples the blend draws from it.
  BlendedDataset(std::vector<std::shared_ptr<const SampleDataset>> datasets, std::vector<double> weights,
                 int64_t size);

  int64_t size() const override { return static_cast<int64_t>(dataset_index_.size()); }
  int64_t sample_length() const override { return datasets_.front()->sample_length(); }
  void sample(int64_t i, std::span<int32_t> out) const override;
  std::string describe() const override;

  const std::vector<double>& weights() const { return weights_; }  // normalised
  const std::vector<int16_t>& dataset_index() const { return dataset_index_; }
  const std::vector<int64_t>& dataset_sample_index() const { return dataset_sample_index_; }

 private:
  std::vector<std::shared_ptr<const SampleDataset>> datasets_;
  std::vector<double> weights_;
  std::vector<int16_t> dataset_index_;         // (size) which dataset
  std::vector<int64_t> dataset_sample_index_;  // (size) which sample of it
};

}  // namespace foundry
