// generate() (models/gpt/generate.h): every token equals what the same seeded sampler draws from
// the training forward recomputed over the whole sequence so far (greedy and top-k/top-p
// sampling); streaming callback order; determinism for a seed; stop_token; stats; bad input.
#include "foundry/models/gpt/generate.h"

#include <algorithm>
#include <vector>

#include "testing.h"

namespace foundry {
namespace {

GPTConfig tiny() {
  return {.vocab_size = 41, .hidden_size = 32, .num_layers = 2, .num_attention_heads = 4,
          .num_query_groups = 2, .ffn_hidden_size = 48, .init_method_std = 0.3f};
}

// The reference loop, without a cache: run the training forward over prompt + generated tokens
// and draw from its last row with a sampler seeded like generate()'s.
std::vector<int32_t> recompute_reference(const GPTModel& m, std::vector<int32_t> seq,
                                         const GenerateConfig& cfg) {
  Sampler sampler({.temperature = cfg.temperature, .top_k = cfg.top_k, .top_p = cfg.top_p}, cfg.seed);
  const int64_t V = m.config().vocab_size;
  std::vector<int32_t> out;
  while (static_cast<int64_t>(out.size()) < cfg.max_new_tokens) {
    Context ctx;
    GPTModel::Saved saved;
    const int64_t T = static_cast<int64_t>(seq.size());
    const Tensor logits = m.forward(ctx, Tensor::from<int32_t>({T}, seq), SequenceLayout::uniform(1, T), saved);
    const int32_t t = sampler.sample(std::span<const float>(logits.ptr<float>() + (T - 1) * V, static_cast<size_t>(V)));
    if (t == cfg.stop_token) break;
    out.push_back(t);
    seq.push_back(t);
  }
  return out;
}

const std::vector<int32_t> kPrompt = {3, 14, 15, 9, 26, 5};

TEST(Generate, GreedyEqualsRecomputedFullForward) {
  const GPTModel m(tiny(), 21);
  const GenerateConfig cfg{.max_new_tokens = 30, .temperature = 0.f};
  const GenerateResult r = generate(m, kPrompt, cfg);
  EXPECT_EQ(r.tokens, recompute_reference(m, kPrompt, cfg));
  EXPECT_EQ(r.tokens.size(), 30u);
}

TEST(Generate, SamplingEqualsRecomputedFullForwardWithTheSameSeed) {
  const GPTModel m(tiny(), 22);
  for (const GenerateConfig cfg : {GenerateConfig{.max_new_tokens = 25, .temperature = 1.f, .seed = 5},
                                   GenerateConfig{.max_new_tokens = 25, .temperature = 0.8f, .top_k = 7, .seed = 6},
                                   GenerateConfig{.max_new_tokens = 25, .temperature = 1.2f, .top_p = 0.9f, .seed = 7}}) {
    const GenerateResult r = generate(m, kPrompt, cfg);
    EXPECT_EQ(r.tokens, recompute_reference(m, kPrompt, cfg)) << "seed " << cfg.seed;
  }
}

TEST(Generate, StreamsEveryTokenInOrder) {
  const GPTModel m(tiny(), 23);
  std::vector<int32_t> streamed;
  const GenerateResult r = generate(m, kPrompt, {.max_new_tokens = 12, .seed = 3},
                                    [&](int32_t t) { streamed.push_back(t); });
  EXPECT_EQ(streamed, r.tokens);
}

TEST(Generate, SameSeedSameTokensOtherSeedOtherTokens) {
  const GPTModel m(tiny(), 24);
  const GenerateConfig cfg{.max_new_tokens = 40, .temperature = 1.f, .seed = 99};
  GenerateConfig other = cfg;
  other.seed = 100;
  EXPECT_EQ(generate(m, kPrompt, cfg).tokens, generate(m, kPrompt, cfg).tokens);
  EXPECT_NE(generate(m, kPrompt, cfg).tokens, generate(m, kPrompt, other).tokens);
}

TEST(Generate, StopsAtTheStopTokenAndReportsStats) {
  const GPTModel m(tiny(), 25);
  GenerateConfig cfg{.max_new_tokens = 20, .temperature = 0.f};
  const GenerateResult full = generate(m, kPrompt, cfg);
  EXPECT_FALSE(full.stats.stopped);
  EXPECT_EQ(full.stats.prompt_tokens, 6);
  EXPECT_EQ(full.stats.new_tokens, 20);
  EXPECT_EQ(full.stats.decode_steps, 19);  // the first token comes from the prefill
  EXPECT_GT(full.stats.prefill_seconds, 0.0);
  EXPECT_GT(full.stats.decode_tokens_per_second(), 0.0);
  // Stop at the first occurrence of the 5th token: everything before it is returned.
  cfg.stop_token = full.tokens[4];
  const size_t first = static_cast<size_t>(std::find(full.tokens.begin(), full.tokens.end(), cfg.stop_token) -
                                           full.tokens.begin());
  const GenerateResult stopped = generate(m, kPrompt, cfg);
  EXPECT_TRUE(stopped.stats.stopped);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + static_cast<std::ptrdiff_t>(first)));
  EXPECT_EQ(stopped.stats.decode_steps, static_cast<int64_t>(first));
}

TEST(Generate, ZeroNewTokensAndOneTokenPrompt) {
  const GPTModel m(tiny(), 26);
  EXPECT_TRUE(generate(m, kPrompt, {.max_new_tokens = 0}).tokens.empty());
  const GenerateConfig cfg{.max_new_tokens = 5, .temperature = 0.f};
  EXPECT_EQ(generate(m, std::vector<int32_t>{7}, cfg).tokens, recompute_reference(m, {7}, cfg));
}

TEST(Generate, RejectsBadInput) {
  const GPTModel m(tiny(), 27);
  EXPECT_ERROR_MENTIONS(generate(m, std::vector<int32_t>{}, {}), "prompt is empty");
  EXPECT_ERROR_MENTIONS(generate(m, std::vector<int32_t>{1, 41}, {}), "prompt token 41 at position 1",
                        "[0, 41)");
  EXPECT_ERROR_MENTIONS(generate(m, std::vector<int32_t>{1, -2}, {}), "prompt token -2");
  EXPECT_ERROR_MENTIONS(generate(m, kPrompt, {.stop_token = 41}), "stop_token 41");
  EXPECT_ERROR_MENTIONS(generate(m, kPrompt, {.max_new_tokens = -1}), "max_new_tokens");
  EXPECT_ERROR_MENTIONS(generate(m, kPrompt, {.top_p = 2.f}), "top_p");
}

}  // namespace
}  // namespace foundry
