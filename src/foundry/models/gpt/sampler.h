// Next-token sampling from logits, with the logits processors of Hugging Face transformers'
// generation (generation/logits_process.py), applied in this order:
//   temperature T:  z = logits / T                         (T = 0: greedy, argmax)
//   top-k k:        keep the k largest z                    (TopKLogitsWarper; 0: off)
//   top-p p:        p_i = softmax(z) over the kept tokens; sort descending and keep the smallest
//                   prefix whose cumulative probability is >= p (at least one token;
//                   TopPLogitsWarper / Holtzman et al. 2020, "nucleus sampling"; 1: off)
//   draw:           from the kept tokens' probabilities, renormalised to sum to 1.
// Ties are broken by the lower token id everywhere (argmax, top-k, top-p order), so top_k = 1
// and a tiny top_p both equal greedy. Randomness: one Philox4x32-10 block (core/rng.h) per draw,
// counter = offset (then offset + 1), key = seed; a 53-bit uniform from its first two words.
// So a (seed, offset) pair reproduces a generation exactly, on any machine and thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "foundry/core/rng.h"

namespace foundry {

struct SamplerConfig {
  float temperature = 1.f;  // >= 0; 0 = greedy
  int64_t top_k = 0;        // >= 0; 0 = off
  float top_p = 1.f;        // in (0, 1]; 1 = off
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig cfg = {}, uint64_t seed = 0, uint64_t offset = 0);

  const SamplerConfig& config() const { return cfg_; }
  bool greedy() const { return cfg_.temperature == 0.f || cfg_.top_k == 1; }
  const Philox& rng() const { return rng_; }  // seed and offset (draws so far) to resume

  // logits (V) f32 -> a token id in [0, V). Greedy draws no random number; otherwise one draw.
  // NaN or +inf logits are an error; -inf logits (masked tokens) are never drawn.
  int32_t sample(std::span<const float> logits);
  // The distribution sample() draws from: (V) probabilities summing to 1, zero outside the
  // kept set (one-hot at the argmax when greedy).
  std::vector<double> distribution(std::span<const float> logits) const;

  // The first index of the largest value.
  static int32_t argmax(std::span<const float> logits);

 private:
  struct Kept {
    std::vector<int32_t> ids;   // the kept tokens
    std::vector<double> probs;  // their probabilities, summing to 1
  };
  Kept kept(std::span<const float> logits) const;
  double uniform();  // [0, 1), 53 bits, one Philox block

  SamplerConfig cfg_;
  Philox rng_;
};

}  // namespace foundry
