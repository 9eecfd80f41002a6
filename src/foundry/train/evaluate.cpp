#include "foundry/train/evaluate.h"

#include <cmath>

#include "foundry/ops/loss.h"

namespace foundry {

EvalResult evaluate_stream(const GPTModel& model, std::span<const int32_t> stream, int64_t seq_length,
                           int64_t micro_batch) {
  FOUNDRY_CHECK(stream.size() >= 2, "eval: {} tokens; at least 2 are needed to score one", stream.size());
  FOUNDRY_CHECK(seq_length > 0 && micro_batch > 0, "eval: seq_length and micro_batch must be positive");
  const int64_t n = static_cast<int64_t>(stream.size());
  // Window w covers stream[w S, min(w S + S, n - 1)] as inputs and the next tokens as targets.
  const int64_t windows = (n - 2) / seq_length + 1;
  EvalResult r;
  double sum = 0;
  Context ctx;
  ctx.training = false;
  for (int64_t w0 = 0; w0 < windows; w0 += micro_batch) {
    std::vector<int32_t> cu{0}, tokens, targets;
    for (int64_t w = w0; w < std::min(windows, w0 + micro_batch); ++w) {
      const int64_t begin = w * seq_length, len = std::min(seq_length, n - 1 - begin);
      tokens.insert(tokens.end(), stream.begin() + begin, stream.begin() + begin + len);
      targets.insert(targets.end(), stream.begin() + begin + 1, stream.begin() + begin + 1 + len);
      cu.push_back(cu.back() + static_cast<int32_t>(len));
    }
    const int64_t T = static_cast<int64_t>(tokens.size());
    const Tensor tok = Tensor::from<int32_t>({T}, tokens), tgt = Tensor::from<int32_t>({T}, targets);
    GPTModel::Saved saved;
    const Tensor logits = model.forward(ctx, tok, SequenceLayout::packed(cu), saved);
    const CrossEntropyResult ce = cross_entropy_fused({.logits = logits, .targets = tgt, .token_count = 1.0});
    sum += ce.loss;  // token_count 1: the sum of per-token losses
    r.tokens += ce.num_valid;
  }
  r.loss = sum / static_cast<double>(r.tokens);
  r.perplexity = std::exp(r.loss);
  return r;
}

}  // namespace foundry
