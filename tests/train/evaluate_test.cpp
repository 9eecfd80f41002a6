#include "foundry/train/evaluate.h"

#include <cmath>

#include "foundry/ops/loss.h"
#include "testing.h"

namespace foundry {
namespace {

// Mean loss of one window scored on its own (uniform layout, one sequence).
double window_loss_sum(const GPTModel& m, const std::vector<int32_t>& s, int64_t begin, int64_t len) {
  std::vector<int32_t> tok(s.begin() + begin, s.begin() + begin + len), tgt(s.begin() + begin + 1, s.begin() + begin + 1 + len);
  Context ctx;
  GPTModel::Saved saved;
  const Tensor logits = m.forward(ctx, Tensor::from<int32_t>({len}, tok), SequenceLayout::uniform(1, len), saved);
  return cross_entropy_fused({.logits = logits, .targets = Tensor::from<int32_t>({len}, tgt)}).loss * static_cast<double>(len);
}

TEST(EvaluateStream, ScoresEveryTokenOnceInWindows) {
  GPTModel m({.vocab_size = 40, .hidden_size = 16, .num_layers = 1, .num_attention_heads = 2, .ffn_hidden_size = 24}, 2);
  std::vector<int32_t> stream(23);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<int32_t>((i * 7 + 3) % 40);
  // S = 8: windows [0, 8), [8, 16), [16, 22) (the last one shorter), 22 targets in all.
  const EvalResult r = evaluate_stream(m, stream, 8, 2);
  EXPECT_EQ(r.tokens, 22);
  const double expected = (window_loss_sum(m, stream, 0, 8) + window_loss_sum(m, stream, 8, 8) +
                           window_loss_sum(m, stream, 16, 6)) / 22.0;
  EXPECT_NEAR(r.loss, expected, 1e-6 * expected);
  EXPECT_NEAR(r.perplexity, std::exp(expected), 1e-5 * std::exp(expected));
  // The micro batch only changes how windows are grouped, not the result.
  EXPECT_NEAR(evaluate_stream(m, stream, 8, 1).loss, r.loss, 1e-6 * r.loss);
  EXPECT_THROW(evaluate_stream(m, std::vector<int32_t>{1}, 8, 1), Error);
}

}  // namespace
}  // namespace foundry
