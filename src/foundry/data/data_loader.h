// DataLoader: micro-batches of a SampleDataset, assembled ahead of time by one background
// thread into a bounded queue. The order is Megatron's MegatronPretrainingSampler
// (megatron/legacy/data/data_samplers.py): samples are taken in dataset order (the dataset is
// already shuffled) starting at `consumed_samples`; each global batch of B * DP consecutive
// samples gives data-parallel rank r the samples [r B, (r + 1) B); a final partial global batch
// is dropped. So batch k of rank r holds samples
//
//   consumed_samples + k B DP + r B + b,   b = 0..B-1
//
// independently of the prefetch depth or thread timing, and a run resumed with the
// consumed_samples() of a stopped one continues exactly where it stopped.
//
// Batch layout (data/batch.h): tokens[b S + t] = sample_b[t], targets[b S + t] = sample_b[t + 1]
// (t < S). With eod_mask_loss (Megatron's --eod-mask-loss), targets at positions whose input
// token is eod_id become ignore_index.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "foundry/data/batch.h"
#include "foundry/data/sample_dataset.h"

namespace foundry {

struct DataLoaderConfig {
  int64_t micro_batch_size = 1;    // B (per data-parallel rank)
  int64_t data_parallel_size = 1;  // DP
  int64_t data_parallel_rank = 0;  // r
  int64_t consumed_samples = 0;    // global samples consumed before this loader (resume point)
  int64_t prefetch = 4;            // batches assembled ahead (>= 1)
  bool eod_mask_loss = false;
  int32_t eod_id = -1;
  int32_t ignore_index = -100;     // as ops/loss.h
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const SampleDataset> dataset, const DataLoaderConfig& cfg);
  ~DataLoader();  // stops and joins the prefetch thread
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next micro-batch; blocks until it is ready. After the last full global batch, or if
  // reading a sample failed, throws foundry::Error (the failure's message).
  Batch next();
  // Global batches still to come (each next() consumes one).
  int64_t batches_remaining() const;
  // Global samples consumed so far, counting the starting consumed_samples: the value to
  // store in a checkpoint and pass back as DataLoaderConfig::consumed_samples to resume.
  int64_t consumed_samples() const { return consumed_; }
  int64_t seq_length() const { return seq_; }
  const DataLoaderConfig& config() const { return cfg_; }

 private:
  void run();
  Batch assemble(int64_t first_sample) const;

  std::shared_ptr<const SampleDataset> dataset_;
  DataLoaderConfig cfg_;
  int64_t seq_ = 0;
  int64_t global_batch_ = 0;  // B * DP
  int64_t total_batches_ = 0; // global batches from consumed_samples to the end
  int64_t consumed_ = 0;      // consumer side

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  bool stop_ = false;
  bool done_ = false;             // producer finished (end of data or error)
  std::exception_ptr error_;
  std::thread worker_;
};

}  // namespace foundry
