// BlendedDataset: after every prefix of n samples each dataset's share is within one sample of
// w_d n (Megatron's build_blending_indices property), samples come from the right dataset in
// order, the blend is deterministic, and datasets too small for their share are rejected.
#include "foundry/data/blended_dataset.h"

#include <cmath>

#include "data_testing.h"
#include "testing.h"

namespace foundry::testing {
namespace {

// A dataset whose sample i is {tag, i, i, ...}.
class TaggedDataset : public SampleDataset {
 public:
  TaggedDataset(int32_t tag, int64_t size, int64_t len) : tag_(tag), size_(size), len_(len) {}
  int64_t size() const override { return size_; }
  int64_t sample_length() const override { return len_; }
  void sample(int64_t i, std::span<int32_t> out) const override {
    FOUNDRY_CHECK(i >= 0 && i < size_, "tagged {}: sample {} out of range", tag_, i);
    out[0] = tag_;
    for (size_t k = 1; k < out.size(); ++k) out[k] = static_cast<int32_t>(i);
  }
  std::string describe() const override { return "tagged " + std::to_string(tag_); }

 private:
  int32_t tag_;
  int64_t size_, len_;
};

std::vector<std::shared_ptr<const SampleDataset>> tagged(const std::vector<int64_t>& sizes, int64_t len = 4) {
  std::vector<std::shared_ptr<const SampleDataset>> v;
  for (size_t d = 0; d < sizes.size(); ++d)
    v.push_back(std::make_shared<TaggedDataset>(static_cast<int32_t>(d), sizes[d], len));
  return v;
}

TEST(BlendedDataset, ProportionsWithinOneSampleOfWeights) {
  const std::vector<std::vector<double>> weight_sets = {
      {1, 1}, {0.3, 0.7}, {3, 2, 1}, {0.5, 0.25, 0.125, 0.125}, {0.01, 0.99}, {2, 0, 1}, {0.17, 0.29, 0.31, 0.23}};
  const int64_t n = 2000;
  for (const auto& weights : weight_sets) {
    SCOPED_TRACE(::testing::PrintToString(weights));
    double sum = 0;
    for (double w : weights) sum += w;
    const auto sizes = blended_component_sizes(weights, n);
    const BlendedDataset blend(tagged(sizes), weights, n);
    ASSERT_EQ(blend.size(), n);
    std::vector<int64_t> count(weights.size(), 0);
    std::vector<int32_t> buf(4);
    for (int64_t i = 0; i < n; ++i) {
      blend.sample(i, buf);
      const size_t d = static_cast<size_t>(buf[0]);
      ASSERT_EQ(buf[1], count[d]) << "sample " << i << " should be dataset " << d << "'s next one";
      ++count[d];
      for (size_t e = 0; e < weights.size(); ++e)
        ASSERT_LE(std::abs(static_cast<double>(count[e]) - weights[e] / sum * static_cast<double>(i + 1)), 1.0)
            << "after " << i + 1 << " samples, dataset " << e << " has " << count[e];
    }
    for (size_t e = 0; e < weights.size(); ++e) EXPECT_LE(count[e], sizes[e]);
  }
}

TEST(BlendedDataset, FollowsMegatronsArgmaxRule) {
  // Weights 0.3 / 0.7: i = 0 uses max(i, 1) = 1, errors 0.3, 0.7 -> dataset 1; i = 1: errors
  // 0.3, -0.3 -> 0; i = 2: 0.6 - 1, 1.4 - 1 -> 1; i = 3: -0.1, 0.1 -> 1; i = 4: 0.2, -0.2 -> 0.
  const BlendedDataset blend(tagged({10, 10}), {0.3, 0.7}, 5);
  EXPECT_EQ(blend.dataset_index(), (std::vector<int16_t>{1, 0, 1, 1, 0}));
  EXPECT_EQ(blend.dataset_sample_index(), (std::vector<int64_t>{0, 0, 1, 2, 1}));
}

TEST(BlendedDataset, Deterministic) {
  const BlendedDataset a(tagged({600, 600, 600}), {0.2, 0.5, 0.3}, 1000);
  const BlendedDataset b(tagged({600, 600, 600}), {2, 5, 3}, 1000);  // same after normalising
  EXPECT_EQ(a.dataset_index(), b.dataset_index());
  EXPECT_EQ(a.dataset_sample_index(), b.dataset_sample_index());
}

TEST(BlendedDataset, ComponentSizesHaveMegatronsSurplus) {
  // ceil(ceil(1000 * w) * 1.005)
  EXPECT_EQ(blended_component_sizes({0.3, 0.7}, 1000), (std::vector<int64_t>{302, 704}));
  EXPECT_EQ(blended_component_sizes({1, 3}, 10), (std::vector<int64_t>{4, 9}));  // 3 * 1.005, 8 * 1.005
}

TEST(BlendedDataset, BadInput) {
  EXPECT_ERROR_MENTIONS(BlendedDataset(tagged({10, 10}), {0.5}, 5), "2 datasets but 1 weights");
  EXPECT_ERROR_MENTIONS(BlendedDataset(tagged({10, 10}), {0.5, -1}, 5), "weight -1");
  EXPECT_ERROR_MENTIONS(BlendedDataset(tagged({10, 10}), {0, 0}, 5), "sum to 0");
  EXPECT_ERROR_MENTIONS(BlendedDataset(tagged({100, 10}), {0.5, 0.5}, 100), "dataset 1", "10 samples", "draws 50");
  auto mixed = tagged({10});
  mixed.push_back(std::make_shared<TaggedDataset>(1, 10, 5));
  EXPECT_ERROR_MENTIONS(BlendedDataset(mixed, {1, 1}, 4), "dataset 1 has samples of 5 tokens");
}

}  // namespace
}  // namespace foundry::testing
