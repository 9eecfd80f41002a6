// Evaluation of a language model on a token stream: the mean per-token cross-entropy of
// predicting every token from all tokens before it within windows of seq_length + 1 tokens
// (consecutive windows share one token, so every token after the first is a target exactly
// once), accumulated in f64. Perplexity = exp(loss).
#pragma once

#include <span>
#include <vector>

#include "foundry/models/gpt/gpt_model.h"

namespace foundry {

struct EvalResult {
  double loss = 0.0;        // mean cross-entropy per target token (nats)
  double perplexity = 0.0;  // exp(loss)
  int64_t tokens = 0;       // target tokens scored
};

// Scores `stream` in windows of seq_length + 1 tokens, micro_batch windows per forward.
EvalResult evaluate_stream(const GPTModel& model, std::span<const int32_t> stream, int64_t seq_length,
                           int64_t micro_batch);

}  // namespace foundry
