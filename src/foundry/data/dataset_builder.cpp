#include "foundry/data/dataset_builder.h"

#include <cmath>

#include "foundry/core/check.h"
#include "foundry/data/blended_dataset.h"
#include "foundry/data/gpt_dataset.h"

namespace foundry {

DataBlend parse_data_path(const std::vector<std::string>& words) {
  FOUNDRY_CHECK(!words.empty(), "data path: no dataset prefix given");
  DataBlend b;
  if (words.size() == 1) {
    b.prefixes = words;
    b.weights = {1.0};
    return b;
  }
  FOUNDRY_CHECK(words.size() % 2 == 0,
                "data path: expected one prefix or \"weight prefix\" pairs, got {} words", words.size());
  for (size_t i = 0; i < words.size(); i += 2) {
    size_t used = 0;
    double w = -1;
    try {
      w = std::stod(words[i], &used);
    } catch (const std::exception&) {
      used = 0;
    }
    FOUNDRY_CHECK(used == words[i].size() && std::isfinite(w) && w >= 0,
                  "data path: \"{}\" is not a weight (expected \"weight prefix\" pairs)", words[i]);
    b.weights.push_back(w);
    b.prefixes.push_back(words[i + 1]);
  }
  return b;
}

std::array<std::shared_ptr<const SampleDataset>, 3> build_gpt_datasets(
    const GPTDataConfig& cfg, const std::array<int64_t, 3>& num_samples) {
  const DataBlend& blend = cfg.blend;
  FOUNDRY_CHECK(!blend.prefixes.empty() && blend.prefixes.size() == blend.weights.size(),
                "data: {} prefixes but {} weights", blend.prefixes.size(), blend.weights.size());
  const std::array<double, 3> split = parse_split(cfg.split);
  std::vector<std::shared_ptr<const IndexedDataset>> data;
  std::vector<std::array<IndexRange, 3>> ranges;
  for (const std::string& prefix : blend.prefixes) {
    data.push_back(std::make_shared<const IndexedDataset>(prefix));
    ranges.push_back(split_ranges(split, data.back()->num_sequences()));
  }

  std::array<std::shared_ptr<const SampleDataset>, 3> out{};
  for (size_t k = 0; k < 3; ++k) {
    const std::string name(split_name(static_cast<Split>(k)));
    if (num_samples[k] <= 0 || split[k] == 0) continue;
    const auto build = [&](size_t d, int64_t samples) {
      const IndexRange r = ranges[d][k];
      FOUNDRY_CHECK(!r.empty(), "data {}: the {} split of \"{}\" over {} sequences is empty",
                    data[d]->prefix(), name, cfg.split, data[d]->num_sequences());
      return std::make_shared<const GPTDataset>(
          data[d], r.begin, r.end,
          GPTDatasetConfig{.seq_length = cfg.seq_length, .num_samples = samples, .seed = cfg.seed, .name = name});
    };
    if (data.size() == 1) {
      out[k] = build(0, num_samples[k]);
      continue;
    }
    const std::vector<int64_t> sizes = blended_component_sizes(blend.weights, num_samples[k]);
    std::vector<std::shared_ptr<const SampleDataset>> parts;
    for (size_t d = 0; d < data.size(); ++d) parts.push_back(build(d, sizes[d]));
    out[k] = std::make_shared<const BlendedDataset>(std::move(parts), blend.weights, num_samples[k]);
  }
  return out;
}

}  // namespace foundry
