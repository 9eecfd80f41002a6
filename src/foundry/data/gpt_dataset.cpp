#include "foundry/data/gpt_dataset.h"

#include <fmt/format.h>

#include <limits>
#include <numeric>

#include "foundry/core/check.h"
#include "foundry/data/shuffle.h"

namespace foundry {

namespace {

// Megatron's _build_document_index for one block of epochs: the ids repeated, shuffled.
void append_shuffled_epochs(std::vector<int32_t>& out, int64_t begin, int64_t end, int64_t epochs,
                            uint64_t seed, ShuffleStream stream) {
  const size_t start = out.size();
  for (int64_t e = 0; e < epochs; ++e)
    for (int64_t s = begin; s < end; ++s) out.push_back(static_cast<int32_t>(s));
  philox_shuffle(std::span<int32_t>(out.data() + start, out.size() - start), seed, stream);
}

}  // namespace

GPTDataset::GPTDataset(std::shared_ptr<const IndexedDataset> data, int64_t begin, int64_t end,
                       const GPTDatasetConfig& cfg)
    : data_(std::move(data)), cfg_(cfg), begin_(begin), end_(end) {
  FOUNDRY_CHECK(data_ != nullptr, "GPTDataset: no indexed dataset");
  const std::string& name = data_->prefix();
  FOUNDRY_CHECK(0 <= begin && begin < end && end <= data_->num_sequences(),
                "GPTDataset {} ({}): sequence range [{}, {}) is empty or outside [0, {})", name,
                cfg.name, begin, end, data_->num_sequences());
  FOUNDRY_CHECK(end <= std::numeric_limits<int32_t>::max(),
                "GPTDataset {}: {} sequences exceed Megatron's int32 document index", name, end);
  FOUNDRY_CHECK(cfg.seq_length >= 1, "GPTDataset {}: seq_length must be >= 1, got {}", name, cfg.seq_length);
  FOUNDRY_CHECK(cfg.num_samples >= 0, "GPTDataset {}: num_samples must be >= 0, got {}", name, cfg.num_samples);
  const int64_t S = cfg.seq_length;

  // Lengths of the exposed sequences (read once; the mmap'd index may be unaligned).
  std::vector<int32_t> lengths(static_cast<size_t>(end - begin));
  for (int64_t s = begin; s < end; ++s) lengths[static_cast<size_t>(s - begin)] = data_->sequence_length(s);
  tokens_per_epoch_ = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
  const int64_t T = tokens_per_epoch_;
  FOUNDRY_CHECK(T > 0, "GPTDataset {} ({}): sequences [{}, {}) hold no tokens", name, cfg.name, begin, end);

  // Epochs (_get_num_epochs) and whether the final one is shuffled separately.
  num_epochs_ = 1;
  if (cfg.num_samples > 0) {
    const int64_t requested = cfg.num_samples * S + 1;
    for (int64_t tokens = T; tokens < requested; tokens += T) ++num_epochs_;
  }
  int64_t samples_sans_final = 0;
  if (num_epochs_ > 1) {
    samples_sans_final = ((num_epochs_ - 1) * T - 1) / S;
    const int64_t from_final = cfg.num_samples - samples_sans_final;
    const int64_t per_epoch = (T - 1) / S;
    separate_final_epoch_ = from_final < static_cast<int64_t>(0.80 * static_cast<double>(per_epoch));
  }

  // Document index (_build_document_index).
  document_index_.reserve(static_cast<size_t>(num_epochs_ * (end - begin)));
  if (!separate_final_epoch_) {
    append_shuffled_epochs(document_index_, begin, end, num_epochs_, cfg.seed, ShuffleStream::document_index);
  } else {
    append_shuffled_epochs(document_index_, begin, end, num_epochs_ - 1, cfg.seed, ShuffleStream::document_index);
    append_shuffled_epochs(document_index_, begin, end, 1, cfg.seed, ShuffleStream::document_index_final);
  }

  // Sample index (helpers.cpp build_sample_idx): entry k = (document-index position, offset)
  // of flat token k S. A sample ending exactly at a document's last token leaves the offset on
  // that token, which the next sample starts from (the one-token overlap).
  const int64_t num_samples = (num_epochs_ * T - 1) / S;
  FOUNDRY_CHECK(num_samples >= 1,
                "GPTDataset {} ({}): {} tokens make no sample of seq_length + 1 = {} tokens", name,
                cfg.name, T, S + 1);
  sample_index_.resize(static_cast<size_t>(2 * (num_samples + 1)));
  int64_t doc = 0, offset = 0;
  sample_index_[0] = 0;
  sample_index_[1] = 0;
  const int64_t last_doc = static_cast<int64_t>(document_index_.size()) - 1;
  for (int64_t k = 1; k <= num_samples; ++k) {
    int64_t remaining = S + 1;
    while (remaining != 0) {
      const int64_t doc_length = lengths[static_cast<size_t>(document_index_[static_cast<size_t>(doc)] - begin)] - offset;
      remaining -= doc_length;
      if (remaining <= 0) {
        offset += remaining + doc_length - 1;
        remaining = 0;
      } else {
        FOUNDRY_CHECK(doc < last_doc, "GPTDataset {}: sample index ran past the documents", name);
        ++doc;
        offset = 0;
      }
    }
    sample_index_[static_cast<size_t>(2 * k)] = doc;
    sample_index_[static_cast<size_t>(2 * k + 1)] = offset;
  }

  // Shuffle index (_build_shuffle_index).
  shuffle_index_.resize(static_cast<size_t>(num_samples));
  std::iota(shuffle_index_.begin(), shuffle_index_.end(), int64_t{0});
  const int64_t first = separate_final_epoch_ ? samples_sans_final : num_samples;
  philox_shuffle(std::span<int64_t>(shuffle_index_.data(), static_cast<size_t>(first)), cfg.seed,
                 ShuffleStream::sample_index);
  if (first < num_samples)
    philox_shuffle(std::span<int64_t>(shuffle_index_.data() + first, static_cast<size_t>(num_samples - first)),
                   cfg.seed, ShuffleStream::sample_index_final);
}

void GPTDataset::sample(int64_t i, std::span<int32_t> out) const {
  FOUNDRY_CHECK(i >= 0 && i < size(), "GPTDataset {} ({}): sample {} out of range [0, {})",
                data_->prefix(), cfg_.name, i, size());
  FOUNDRY_CHECK(static_cast<int64_t>(out.size()) == sample_length(),
                "GPTDataset: sample buffer holds {} tokens, expected {}", out.size(), sample_length());
  const size_t j = static_cast<size_t>(shuffle_index_[static_cast<size_t>(i)]);
  const int64_t doc_beg = sample_index_[2 * j], off_beg = sample_index_[2 * j + 1];
  const int64_t doc_end = sample_index_[2 * j + 2], off_end = sample_index_[2 * j + 3];
  int64_t pos = 0;
  for (int64_t d = doc_beg; d <= doc_end; ++d) {
    const int64_t seq = document_index_[static_cast<size_t>(d)];
    const int64_t from = d == doc_beg ? off_beg : 0;
    const int64_t to = d == doc_end ? off_end + 1 : data_->sequence_length(seq);  // exclusive
    const int64_t n = to - from;
    FOUNDRY_CHECK(n >= 0 && pos + n <= sample_length(), "GPTDataset {}: corrupt sample index at {}",
                  data_->prefix(), j);
    data_->read(seq, from, out.subspan(static_cast<size_t>(pos), static_cast<size_t>(n)));
    pos += n;
  }
  FOUNDRY_CHECK(pos == sample_length(), "GPTDataset {}: sample {} has {} tokens, expected {}",
                data_->prefix(), j, pos, sample_length());
}

std::string GPTDataset::describe() const {
  return fmt::format("GPTDataset {} ({}): sequences [{}, {}), {} tokens/epoch, {} epochs, {} samples of {} tokens{}",
                     data_->prefix(), cfg_.name, begin_, end_, tokens_per_epoch_, num_epochs_, size(),
                     sample_length(), separate_final_epoch_ ? ", final epoch shuffled separately" : "");
}

}  // namespace foundry
