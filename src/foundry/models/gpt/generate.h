// Autoregressive generation with a KV cache (the loop of Hugging Face's `generate` /
// Megatron's inference engine, for one sequence):
//   prefill: logits = forward_inference(prompt) (last position only);  x_1 = sample(logits)
//   decode:  for n = 2 .. max_new_tokens:  logits = forward_inference(x_{n-1});  x_n = sample(logits)
// stopping early after stop_token. Each decode step runs the model on one token against the
// cached keys and values of everything before it (GPTModel::forward_inference).
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "foundry/models/gpt/gpt_model.h"
#include "foundry/models/gpt/sampler.h"

namespace foundry {

struct GenerateConfig {
  int64_t max_new_tokens = 64;
  float temperature = 1.f;  // 0 = greedy
  int64_t top_k = 0;        // 0 = off
  float top_p = 1.f;        // 1 = off
  uint64_t seed = 0;        // Philox seed of the sampler (same seed, same tokens)
  int32_t stop_token = -1;  // < 0: none. Generation ends when it is drawn; it is not returned.
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t new_tokens = 0;       // tokens returned (the stop token not counted)
  int64_t decode_steps = 0;     // one-token forwards after the prefill
  double prefill_seconds = 0;   // prompt forward + first draw
  double decode_seconds = 0;    // the decode steps' forwards and draws (callbacks excluded)
  bool stopped = false;         // ended on stop_token

  double prefill_tokens_per_second() const { return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0; }
  double decode_tokens_per_second() const { return decode_seconds > 0 ? decode_steps / decode_seconds : 0; }
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // the new tokens only (without the prompt and the stop token)
  GenerateStats stats;
};

// Called with each new token as soon as it is drawn (streaming), in order.
using TokenCallback = std::function<void(int32_t token)>;

// prompt: token ids in [0, V), at least one. Runs on the model's own parameters, forward only.
GenerateResult generate(const GPTModel& model, std::span<const int32_t> prompt,
                        const GenerateConfig& cfg, const TokenCallback& on_token = {});

}  // namespace foundry
