// DataLoader: batch k of rank r holds samples consumed + k B DP + r B + b whatever the prefetch
// depth; a loader started at another's consumed_samples() continues exactly; errors in the
// producer thread reach next(); destruction with a full queue does not hang.
#include "foundry/data/data_loader.h"

#include <atomic>

#include "data_testing.h"
#include "foundry/data/gpt_dataset.h"
#include "testing.h"

namespace foundry::testing {
namespace {

// Sample i is i*1000 + t for t = 0..S; optionally throws at one sample.
class CountingDataset : public SampleDataset {
 public:
  CountingDataset(int64_t size, int64_t seq, int64_t fail_at = -1) : size_(size), seq_(seq), fail_at_(fail_at) {}
  int64_t size() const override { return size_; }
  int64_t sample_length() const override { return seq_ + 1; }
  void sample(int64_t i, std::span<int32_t> out) const override {
    FOUNDRY_CHECK(i != fail_at_, "counting dataset: sample {} is unreadable", i);
    for (size_t t = 0; t < out.size(); ++t) out[t] = static_cast<int32_t>(i * 1000 + static_cast<int64_t>(t));
  }
  std::string describe() const override { return "counting"; }

 private:
  int64_t size_, seq_, fail_at_;
};

std::vector<int32_t> vec(const Tensor& t) {
  const int32_t* p = t.ptr<int32_t>();
  return {p, p + t.numel()};
}

// The batch the spec says: tokens / targets of samples first..first+B-1.
void expect_batch(const Batch& b, const SampleDataset& ds, int64_t first, int64_t B) {
  const int64_t S = ds.sample_length() - 1;
  ASSERT_EQ(b.tokens.numel(), B * S);
  ASSERT_EQ(b.targets.numel(), B * S);
  EXPECT_EQ(b.layout.batch, B);
  std::vector<int32_t> tok, tgt, s(static_cast<size_t>(S + 1));
  for (int64_t i = 0; i < B; ++i) {
    ds.sample(first + i, s);
    tok.insert(tok.end(), s.begin(), s.end() - 1);
    tgt.insert(tgt.end(), s.begin() + 1, s.end());
  }
  EXPECT_EQ(vec(b.tokens), tok) << "batch starting at sample " << first;
  EXPECT_EQ(vec(b.targets), tgt) << "batch starting at sample " << first;
  const int32_t* pos = b.layout.positions.ptr<int32_t>();
  for (int64_t t = 0; t < B * S; ++t) ASSERT_EQ(pos[t], t % S);
}

TEST(DataLoader, OrderIsTheSamplerOrderForAnyPrefetchDepth) {
  const std::string p = scratch_dir() + "/d";
  std::vector<std::vector<int32_t>> docs;
  for (int d = 0; d < 60; ++d) docs.push_back(std::vector<int32_t>(static_cast<size_t>(3 + d % 17), d));
  write_dataset(p, docs);
  const auto ds = std::make_shared<const GPTDataset>(std::make_shared<const IndexedDataset>(p), 0, 60,
                                                     GPTDatasetConfig{.seq_length = 8, .num_samples = 0, .seed = 3});
  std::vector<std::vector<int32_t>> runs[2];
  int r = 0;
  for (const int64_t depth : {1, 8}) {
    DataLoader loader(ds, {.micro_batch_size = 3, .prefetch = depth});
    EXPECT_EQ(loader.batches_remaining(), ds->size() / 3);
    for (int64_t k = 0; k < ds->size() / 3; ++k) {
      const Batch b = loader.next();
      expect_batch(b, *ds, 3 * k, 3);
      runs[r].push_back(vec(b.tokens));
    }
    EXPECT_EQ(loader.consumed_samples(), ds->size() / 3 * 3);
    EXPECT_EQ(loader.batches_remaining(), 0);
    EXPECT_ERROR_MENTIONS(loader.next(), "exhausted");
    ++r;
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(DataLoader, ResumeContinuesExactly) {
  const auto ds = std::make_shared<CountingDataset>(100, 5);
  DataLoader first(ds, {.micro_batch_size = 4, .prefetch = 6});
  for (int k = 0; k < 7; ++k) first.next();
  const int64_t position = first.consumed_samples();
  EXPECT_EQ(position, 28);
  const Batch expected = first.next();
  DataLoader resumed(ds, {.micro_batch_size = 4, .consumed_samples = position, .prefetch = 2});
  const Batch got = resumed.next();
  EXPECT_EQ(vec(got.tokens), vec(expected.tokens));
  EXPECT_EQ(vec(got.targets), vec(expected.targets));
  EXPECT_EQ(resumed.consumed_samples(), first.consumed_samples());
  EXPECT_EQ(resumed.batches_remaining(), first.batches_remaining());
}

TEST(DataLoader, DataParallelRanksSplitEachGlobalBatch) {
  const auto ds = std::make_shared<CountingDataset>(50, 3);
  // B = 2, DP = 3: global batches of 6, the final partial one (samples 48, 49) dropped.
  for (int64_t rank = 0; rank < 3; ++rank) {
    DataLoader loader(ds, {.micro_batch_size = 2, .data_parallel_size = 3, .data_parallel_rank = rank,
                           .consumed_samples = 6});
    EXPECT_EQ(loader.batches_remaining(), 7);
    for (int64_t k = 0; k < 7; ++k) expect_batch(loader.next(), *ds, 6 + 6 * k + 2 * rank, 2);
    EXPECT_EQ(loader.consumed_samples(), 48);
    EXPECT_ERROR_MENTIONS(loader.next(), "exhausted");
  }
}

TEST(DataLoader, ProducerErrorsReachTheConsumerInOrder) {
  const auto ds = std::make_shared<CountingDataset>(100, 3, /*fail_at=*/9);
  DataLoader loader(ds, {.micro_batch_size = 4, .prefetch = 3});
  expect_batch(loader.next(), *ds, 0, 4);
  expect_batch(loader.next(), *ds, 4, 4);
  EXPECT_ERROR_MENTIONS(loader.next(), "sample 9 is unreadable");
  EXPECT_ERROR_MENTIONS(loader.next(), "sample 9 is unreadable");
}

TEST(DataLoader, EodMaskLoss) {
  // Sample i = i*1000 + t: with eod_id = 2002 the input 2002 (sample 2, t = 2) masks its target.
  const auto ds = std::make_shared<CountingDataset>(10, 4);
  DataLoader loader(ds, {.micro_batch_size = 1, .consumed_samples = 2, .eod_mask_loss = true, .eod_id = 2002});
  const Batch b = loader.next();
  EXPECT_EQ(vec(b.tokens), (std::vector<int32_t>{2000, 2001, 2002, 2003}));
  EXPECT_EQ(vec(b.targets), (std::vector<int32_t>{2001, 2002, -100, 2004}));
}

TEST(DataLoader, DestroyedWithAFullQueueOrMidStream) {
  const auto ds = std::make_shared<CountingDataset>(100000, 16);
  for (int depth : {1, 4}) {
    DataLoader a(ds, {.micro_batch_size = 2, .prefetch = depth});
    a.next();
  }
  DataLoader b(ds, {.micro_batch_size = 2, .prefetch = 2});  // destroyed without any next()
  SUCCEED();
}

TEST(DataLoader, BadConfiguration) {
  const auto ds = std::make_shared<CountingDataset>(10, 3);
  EXPECT_ERROR_MENTIONS(DataLoader(ds, {.micro_batch_size = 0}), "micro_batch_size");
  EXPECT_ERROR_MENTIONS(DataLoader(ds, {.data_parallel_size = 2, .data_parallel_rank = 2}), "rank 2 of size 2");
  EXPECT_ERROR_MENTIONS(DataLoader(ds, {.consumed_samples = 11}), "consumed_samples 11", "10 samples");
  EXPECT_ERROR_MENTIONS(DataLoader(ds, {.prefetch = 0}), "prefetch");
  EXPECT_ERROR_MENTIONS(DataLoader(nullptr, {}), "no dataset");
}

}  // namespace
}  // namespace foundry::testing
