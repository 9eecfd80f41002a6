// GPTDataset: fixed-length language-model samples cut from an indexed dataset, with the
// semantics of Megatron-Core's GPTDataset (megatron/core/datasets/gpt_dataset.py and
// build_sample_idx in megatron/core/datasets/helpers.cpp), add_extra_token_to_sequence = true
// and drop_last_partial_sequence = true:
//
//   tokens_per_epoch T = sum of the lengths of the exposed sequences [begin, end)
//   num_epochs E      = smallest E with E * T >= num_samples * S + 1 (1 when num_samples = 0)
//   document index    = the exposed sequence ids repeated E times, shuffled. When E > 1 and
//                       the final epoch contributes fewer than int(0.8 * ((T - 1) / S)) samples,
//                       the first E - 1 epochs and the final epoch are shuffled separately
//                       (Megatron's separate_final_epoch), so the final epoch's partial use
//                       does not bias the earlier ones.
//   flat stream       = the documents concatenated in document-index order
//   sample k          = flat[k S, k S + S]  (S + 1 tokens; consecutive samples share one token,
//                       so every token is a target exactly once), k < (E T - 1) / S
//   sample index      = (document-index position, offset) of flat[k S] for k = 0..num_samples
//   shuffle index     = a permutation of the samples (first and final epoch separately when
//                       the final epoch is separated); size() = number of samples built, which
//                       may exceed the requested num_samples, as in Megatron.
//   sample(i)         = sample shuffle[i]
//
// The one deliberate difference: both shuffles use foundry's Philox (data/shuffle.h, streams
// named there) instead of numpy.random.RandomState(seed), so the permutations are not numpy's,
// but the construction above is identical: given Megatron's document and shuffle indices, the
// same samples come out (the test checks against a naive concatenate-and-cut reference).
#pragma once

#include <memory>
#include <vector>

#include "foundry/data/indexed_dataset.h"
#include "foundry/data/sample_dataset.h"

namespace foundry {

struct GPTDatasetConfig {
  int64_t seq_length = 0;   // S; each sample holds S + 1 tokens
  int64_t num_samples = 0;  // samples requested (epochs are added to reach it); 0: one epoch
  uint64_t seed = 1234;     // Megatron's --seed
  std::string name = "train";  // split name, for messages
};

class GPTDataset : public SampleDataset {
 public:
  // Samples over sequences [begin, end) of `data` (a train/valid/test range, data/split.h).
  GPTDataset(std::shared_ptr<const IndexedDataset> data, int64_t begin, int64_t end,
             const GPTDatasetConfig& cfg);

  int64_t size() const override { return static_cast<int64_t>(shuffle_index_.size()); }
  int64_t sample_length() const override { return cfg_.seq_length + 1; }
  void sample(int64_t i, std::span<int32_t> out) const override;
  std::string describe() const override;

  const GPTDatasetConfig& config() const { return cfg_; }
  int64_t num_epochs() const { return num_epochs_; }
  int64_t tokens_per_epoch() const { return tokens_per_epoch_; }
  bool separate_final_epoch() const { return separate_final_epoch_; }
  // The three indices, for tests and inspection.
  const std::vector<int32_t>& document_index() const { return document_index_; }  // sequence ids
  const std::vector<int64_t>& sample_index() const { return sample_index_; }  // (size() + 1) x 2
  const std::vector<int64_t>& shuffle_index() const { return shuffle_index_; }

 private:
  std::shared_ptr<const IndexedDataset> data_;
  GPTDatasetConfig cfg_;
  int64_t begin_, end_;
  int64_t num_epochs_ = 1;
  int64_t tokens_per_epoch_ = 0;
  bool separate_final_epoch_ = false;
  std::vector<int32_t> document_index_;
  std::vector<int64_t> sample_index_;
  std::vector<int64_t> shuffle_index_;
};

}  // namespace foundry
