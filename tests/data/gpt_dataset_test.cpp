// GPTDataset against a naive reference: concatenate the documents in document-index order and
// cut windows of S + 1 tokens every S tokens. Also: the document index repeats each document
// once per epoch (first epochs and a separated final epoch shuffled apart, as Megatron), the
// epoch count is the smallest that covers the request, the shuffles are permutations that
// depend only on the seed, and the Philox shuffle is uniform.
#include "foundry/data/gpt_dataset.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "data_testing.h"
#include "foundry/data/shuffle.h"
#include "testing.h"

namespace foundry::testing {
namespace {

// Document d has length lengths[d] and tokens 100 d + j (all distinct).
std::shared_ptr<const IndexedDataset> make_data(const std::string& prefix, const std::vector<int>& lengths) {
  std::vector<std::vector<int32_t>> docs;
  for (size_t d = 0; d < lengths.size(); ++d) {
    std::vector<int32_t> doc;
    for (int j = 0; j < lengths[d]; ++j) doc.push_back(static_cast<int32_t>(100 * d) + j);
    docs.push_back(doc);
  }
  write_dataset(prefix, docs, IndexedDType::i32);
  return std::make_shared<const IndexedDataset>(prefix);
}

// The naive reference for every sample, plus the structural invariants.
void check_against_naive(const GPTDataset& ds, const IndexedDataset& data, int64_t begin, int64_t end) {
  const int64_t S = ds.config().seq_length;
  const int64_t n_docs = end - begin;
  int64_t T = 0;
  for (int64_t s = begin; s < end; ++s) T += data.sequence_length(s);
  // Epochs: the smallest E with E T >= num_samples S + 1.
  int64_t E = 1;
  while (ds.config().num_samples > 0 && E * T < ds.config().num_samples * S + 1) ++E;
  ASSERT_EQ(ds.num_epochs(), E);
  ASSERT_EQ(ds.size(), (E * T - 1) / S);
  EXPECT_GE(ds.size(), ds.config().num_samples);

  // Document index: every document once per epoch; a separated final epoch once in the tail.
  const auto& di = ds.document_index();
  ASSERT_EQ(static_cast<int64_t>(di.size()), E * n_docs);
  const auto count_in = [&](int64_t from, int64_t to) {
    std::map<int32_t, int64_t> c;
    for (int64_t k = from; k < to; ++k) c[di[static_cast<size_t>(k)]]++;
    return c;
  };
  const int64_t tail = ds.separate_final_epoch() ? n_docs : 0;
  const auto head_counts = count_in(0, E * n_docs - tail);
  ASSERT_EQ(static_cast<int64_t>(head_counts.size()), n_docs);
  for (const auto& [doc, c] : head_counts) {
    EXPECT_GE(doc, begin);
    EXPECT_LT(doc, end);
    EXPECT_EQ(c, ds.separate_final_epoch() ? E - 1 : E) << "document " << doc;
  }
  if (tail > 0) {
    const auto tail_counts = count_in(E * n_docs - tail, E * n_docs);
    ASSERT_EQ(static_cast<int64_t>(tail_counts.size()), n_docs);
  }

  // Shuffle index: a permutation; with a separated final epoch, of two blocks apart.
  std::vector<int64_t> sorted = ds.shuffle_index();
  std::sort(sorted.begin(), sorted.end());
  for (int64_t k = 0; k < ds.size(); ++k) ASSERT_EQ(sorted[static_cast<size_t>(k)], k);
  if (ds.separate_final_epoch()) {
    const int64_t sans = ((E - 1) * T - 1) / S;
    for (int64_t k = 0; k < ds.size(); ++k)
      EXPECT_EQ(ds.shuffle_index()[static_cast<size_t>(k)] < sans, k < sans) << "position " << k;
  }

  // Samples vs the naive concatenation.
  std::vector<int32_t> flat;
  for (int32_t doc : di) {
    const auto s = data.sequence(doc);
    flat.insert(flat.end(), s.begin(), s.end());
  }
  std::vector<int32_t> got(static_cast<size_t>(S + 1));
  for (int64_t i = 0; i < ds.size(); ++i) {
    const int64_t k = ds.shuffle_index()[static_cast<size_t>(i)];
    ds.sample(i, got);
    const std::vector<int32_t> want(flat.begin() + k * S, flat.begin() + k * S + S + 1);
    ASSERT_EQ(got, want) << "sample " << i << " (unshuffled " << k << ")";
  }
}

TEST(GPTDataset, OneEpochMatchesNaiveReference) {
  const auto data = make_data(scratch_dir() + "/d", {5, 1, 12, 3, 0, 8, 2, 9, 1, 4, 7});
  for (const int64_t S : {1, 2, 3, 7, 16, 40}) {
    SCOPED_TRACE("S = " + std::to_string(S));
    const GPTDataset ds(data, 0, data->num_sequences(), {.seq_length = S, .num_samples = 0, .seed = 5});
    EXPECT_EQ(ds.num_epochs(), 1);
    check_against_naive(ds, *data, 0, data->num_sequences());
  }
}

TEST(GPTDataset, SubRangeAndManyEpochsMatchNaiveReference) {
  const auto data = make_data(scratch_dir() + "/d", {5, 1, 12, 3, 0, 8, 2, 9, 1, 4, 7, 6});
  // Range [2, 9): 35 tokens per epoch.
  for (const int64_t samples : {1, 8, 9, 17, 20, 34, 50, 101}) {
    for (const int64_t S : {4, 5}) {
      SCOPED_TRACE("num_samples " + std::to_string(samples) + ", S " + std::to_string(S));
      const GPTDataset ds(data, 2, 9, {.seq_length = S, .num_samples = samples, .seed = 77});
      check_against_naive(ds, *data, 2, 9);
    }
  }
}

TEST(GPTDataset, FinalEpochSeparationFollowsMegatronsThreshold) {
  const auto data = make_data(scratch_dir() + "/d", std::vector<int>(10, 10));  // T = 100
  const int64_t S = 9;  // (T - 1) / S = 11 samples per epoch; threshold int(0.8 * 11) = 8
  // E = 2 for 12..22 samples; sans = (100 - 1) / 9 = 11, from_final = n - 11.
  EXPECT_TRUE(GPTDataset(data, 0, 10, {.seq_length = S, .num_samples = 12}).separate_final_epoch());   // 1 < 8
  EXPECT_TRUE(GPTDataset(data, 0, 10, {.seq_length = S, .num_samples = 18}).separate_final_epoch());   // 7 < 8
  EXPECT_FALSE(GPTDataset(data, 0, 10, {.seq_length = S, .num_samples = 19}).separate_final_epoch());  // 8
  EXPECT_FALSE(GPTDataset(data, 0, 10, {.seq_length = S, .num_samples = 11}).separate_final_epoch());  // E = 1
  const GPTDataset sep(data, 0, 10, {.seq_length = S, .num_samples = 14});
  EXPECT_EQ(sep.num_epochs(), 2);
  check_against_naive(sep, *data, 0, 10);
}

TEST(GPTDataset, DeterministicForASeedAndDifferentAcrossSeeds) {
  const auto data = make_data(scratch_dir() + "/d", {5, 1, 12, 3, 0, 8, 2, 9, 1, 4, 7, 6, 3, 3, 9, 2});
  const GPTDatasetConfig cfg{.seq_length = 4, .num_samples = 40, .seed = 1234};
  const GPTDataset a(data, 0, 16, cfg), b(data, 0, 16, cfg);
  EXPECT_EQ(a.document_index(), b.document_index());
  EXPECT_EQ(a.sample_index(), b.sample_index());
  EXPECT_EQ(a.shuffle_index(), b.shuffle_index());
  GPTDatasetConfig other = cfg;
  other.seed = 1235;
  const GPTDataset c(data, 0, 16, other);
  EXPECT_NE(a.document_index(), c.document_index());
  EXPECT_NE(a.shuffle_index(), c.shuffle_index());
  std::vector<int32_t> x(5), y(5);
  int differ = 0;
  for (int64_t i = 0; i < std::min(a.size(), c.size()); ++i) {
    a.sample(i, x);
    c.sample(i, y);
    differ += x != y;
  }
  EXPECT_GT(differ, a.size() / 2);
}

TEST(GPTDataset, PhiloxShuffleIsUniform) {
  // All 24 permutations of 4 elements over 4800 seeds: each expected 200 times. The bound is
  // about 5 standard deviations (sqrt(200 * 23/24) = 13.8).
  std::map<std::vector<int>, int> counts;
  for (uint64_t seed = 0; seed < 4800; ++seed) {
    std::vector<int> v = {0, 1, 2, 3};
    philox_shuffle(std::span<int>(v), seed, ShuffleStream::document_index);
    counts[v]++;
  }
  EXPECT_EQ(counts.size(), 24u);
  for (const auto& [perm, c] : counts) EXPECT_NEAR(c, 200, 70);
}

TEST(GPTDataset, BadConfigurations) {
  const auto data = make_data(scratch_dir() + "/d", {5, 0, 3});
  EXPECT_ERROR_MENTIONS(GPTDataset(data, 0, 4, {.seq_length = 2}), "[0, 4)", "outside");
  EXPECT_ERROR_MENTIONS(GPTDataset(data, 2, 2, {.seq_length = 2}), "empty");
  EXPECT_ERROR_MENTIONS(GPTDataset(data, 1, 2, {.seq_length = 2, .name = "valid"}), "valid", "no tokens");
  EXPECT_ERROR_MENTIONS(GPTDataset(data, 0, 3, {.seq_length = 0}), "seq_length");
  EXPECT_ERROR_MENTIONS(GPTDataset(data, 2, 3, {.seq_length = 8}), "3 tokens", "no sample", "9 tokens");
  const GPTDataset ok(data, 0, 3, {.seq_length = 2});
  std::vector<int32_t> out(3);
  EXPECT_ERROR_MENTIONS(ok.sample(ok.size(), out), "out of range");
  std::vector<int32_t> small(2);
  EXPECT_ERROR_MENTIONS(ok.sample(0, small), "expected 3");
}

}  // namespace
}  // namespace foundry::testing
