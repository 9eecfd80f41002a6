#include "foundry/data/data_loader.h"

#include <vector>

#include "foundry/core/check.h"

namespace foundry {

DataLoader::DataLoader(std::shared_ptr<const SampleDataset> dataset, const DataLoaderConfig& cfg)
    : dataset_(std::move(dataset)), cfg_(cfg) {
  FOUNDRY_CHECK(dataset_ != nullptr, "DataLoader: no dataset");
  FOUNDRY_CHECK(cfg.micro_batch_size >= 1, "DataLoader: micro_batch_size must be >= 1, got {}", cfg.micro_batch_size);
  FOUNDRY_CHECK(cfg.data_parallel_size >= 1 && cfg.data_parallel_rank >= 0 &&
                    cfg.data_parallel_rank < cfg.data_parallel_size,
                "DataLoader: data-parallel rank {} of size {} is invalid", cfg.data_parallel_rank,
                cfg.data_parallel_size);
  FOUNDRY_CHECK(cfg.prefetch >= 1, "DataLoader: prefetch must be >= 1, got {}", cfg.prefetch);
  FOUNDRY_CHECK(cfg.consumed_samples >= 0 && cfg.consumed_samples <= dataset_->size(),
                "DataLoader: consumed_samples {} is outside the dataset's {} samples ({})",
                cfg.consumed_samples, dataset_->size(), dataset_->describe());
  seq_ = dataset_->sample_length() - 1;
  FOUNDRY_CHECK(seq_ >= 1, "DataLoader: samples of {} tokens hold no (input, target) pair", seq_ + 1);
  global_batch_ = cfg.micro_batch_size * cfg.data_parallel_size;
  total_batches_ = (dataset_->size() - cfg.consumed_samples) / global_batch_;
  consumed_ = cfg.consumed_samples;
  worker_ = std::thread([this] { run(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t DataLoader::batches_remaining() const {
  return total_batches_ - (consumed_ - cfg_.consumed_samples) / global_batch_;
}

Batch DataLoader::assemble(int64_t first) const {
  const int64_t B = cfg_.micro_batch_size, S = seq_;
  Batch b;
  b.tokens = Tensor::empty({B * S}, DType::i32);
  b.targets = Tensor::empty({B * S}, DType::i32);
  int32_t* tok = b.tokens.ptr<int32_t>();
  int32_t* tgt = b.targets.ptr<int32_t>();
  std::vector<int32_t> buf(static_cast<size_t>(S + 1));
  for (int64_t i = 0; i < B; ++i) {
    dataset_->sample(first + i, buf);
    for (int64_t t = 0; t < S; ++t) {
      tok[i * S + t] = buf[static_cast<size_t>(t)];
      tgt[i * S + t] = buf[static_cast<size_t>(t + 1)];
      if (cfg_.eod_mask_loss && buf[static_cast<size_t>(t)] == cfg_.eod_id) tgt[i * S + t] = cfg_.ignore_index;
    }
  }
  b.layout = SequenceLayout::uniform(B, S);
  return b;
}

void DataLoader::run() {
  try {
    for (int64_t k = 0; k < total_batches_; ++k) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || static_cast<int64_t>(queue_.size()) < cfg_.prefetch; });
        if (stop_) return;
      }
      const int64_t first = cfg_.consumed_samples + k * global_batch_ + cfg_.data_parallel_rank * cfg_.micro_batch_size;
      Batch b = assemble(first);
      {
        std::lock_guard lock(mu_);
        queue_.push_back(std::move(b));
      }
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(mu_);
    error_ = std::current_exception();
  }
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
}

Batch DataLoader::next() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (queue_.empty()) {
    if (error_) std::rethrow_exception(error_);
    FOUNDRY_FAIL("DataLoader: data exhausted after {} samples ({}); ask the dataset for more samples",
                 consumed_, dataset_->describe());
  }
  Batch b = std::move(queue_.front());
  queue_.pop_front();
  consumed_ += global_batch_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace foundry
