// SampleDataset: what the data loader draws from: a fixed number of samples, each
// sample_length() = seq_length + 1 token ids (inputs are the first S, targets the last S).
// Implemented by GPTDataset (one indexed dataset) and BlendedDataset (a weighted mix).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace foundry {

class SampleDataset {
 public:
  virtual ~SampleDataset() = default;
  virtual int64_t size() const = 0;           // number of samples
  virtual int64_t sample_length() const = 0;  // tokens per sample (S + 1)
  // Sample i (0 <= i < size()) into out (out.size() == sample_length()). Thread-safe.
  virtual void sample(int64_t i, std::span<int32_t> out) const = 0;
  virtual std::string describe() const = 0;
};

}  // namespace foundry
