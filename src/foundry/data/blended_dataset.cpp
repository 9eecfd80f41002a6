#include "foundry/data/blended_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "foundry/core/check.h"

namespace foundry {

namespace {

std::vector<double> normalized(const std::vector<double>& weights) {
  FOUNDRY_CHECK(!weights.empty(), "blend: no weights");
  double sum = 0;
  for (size_t d = 0; d < weights.size(); ++d) {
    FOUNDRY_CHECK(std::isfinite(weights[d]) && weights[d] >= 0, "blend: weight {} of dataset {} must be >= 0",
                  weights[d], d);
    sum += weights[d];
  }
  FOUNDRY_CHECK(sum > 0, "blend: the weights sum to 0");
  std::vector<double> w(weights);
  for (double& x : w) x /= sum;
  return w;
}

}  // namespace

std::vector<int64_t> blended_component_sizes(const std::vector<double>& weights, int64_t size,
                                             double surplus) {
  FOUNDRY_CHECK(size >= 0, "blend: size must be >= 0, got {}", size);
  std::vector<int64_t> sizes;
  for (double w : normalized(weights))
    sizes.push_back(static_cast<int64_t>(
        std::ceil(std::ceil(static_cast<double>(size) * w) * (1.0 + surplus))));
  return sizes;
}

BlendedDataset::BlendedDataset(std::vector<std::shared_ptr<const SampleDataset>> datasets,
                               std::vector<double> weights, int64_t size)
    : datasets_(std::move(datasets)), weights_(normalized(weights)) {
  const size_t n = datasets_.size();
  FOUNDRY_CHECK(n >= 1 && n == weights_.size(), "blend: {} datasets but {} weights", n, weights_.size());
  FOUNDRY_CHECK(n <= static_cast<size_t>(std::numeric_limits<int16_t>::max()),
                "blend: at most {} datasets, got {}", std::numeric_limits<int16_t>::max(), n);
  FOUNDRY_CHECK(size >= 1, "blend: size must be >= 1, got {}", size);
  for (size_t d = 0; d < n; ++d) {
    FOUNDRY_CHECK(datasets_[d] != nullptr, "blend: dataset {} is missing", d);
    FOUNDRY_CHECK(datasets_[d]->sample_length() == datasets_[0]->sample_length(),
                  "blend: dataset {} has samples of {} tokens, dataset 0 of {}", d,
                  datasets_[d]->sample_length(), datasets_[0]->sample_length());
  }

  // build_blending_indices.
  dataset_index_.resize(static_cast<size_t>(size));
  dataset_sample_index_.resize(static_cast<size_t>(size));
  std::vector<int64_t> count(n, 0);
  for (int64_t i = 0; i < size; ++i) {
    const double i_d = std::max(static_cast<double>(i), 1.0);
    size_t best = 0;
    double best_error = weights_[0] * i_d - static_cast<double>(count[0]);
    for (size_t d = 1; d < n; ++d) {
      const double error = weights_[d] * i_d - static_cast<double>(count[d]);
      if (error > best_error) {
        best_error = error;
        best = d;
      }
    }
    dataset_index_[static_cast<size_t>(i)] = static_cast<int16_t>(best);
    dataset_sample_index_[static_cast<size_t>(i)] = count[best]++;
  }
  for (size_t d = 0; d < n; ++d)
    FOUNDRY_CHECK(count[d] <= datasets_[d]->size(),
                  "blend: dataset {} ({}) has {} samples, the blend of {} draws {} from it", d,
                  datasets_[d]->describe(), datasets_[d]->size(), size, count[d]);
}

void BlendedDataset::sample(int64_t i, std::span<int32_t> out) const {
  FOUNDRY_CHECK(i >= 0 && i < size(), "blend: sample {} out of range [0, {})", i, size());
  const size_t k = static_cast<size_t>(i);
  datasets_[static_cast<size_t>(dataset_index_[k])]->sample(dataset_sample_index_[k], out);
}

std::string BlendedDataset::describe() const {
  std::string s = fmt::format("BlendedDataset: {} samples of {} tokens from {} datasets", size(),
                              sample_length(), datasets_.size());
  for (size_t d = 0; d < datasets_.size(); ++d)
    s += fmt::format("\n  weight {:.4f}: {}", weights_[d], datasets_[d]->describe());
  return s;
}

}  // namespace foundry
