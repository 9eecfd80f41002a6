// Autoregressive generation with a KV cache; the loop is described in generate.h.
#include "foundry/models/gpt/generate.h"

#include <chrono>

namespace foundry {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GenerateResult generate(const GPTModel& model, std::span<const int32_t> prompt,
                        const GenerateConfig& cfg, const TokenCallback& on_token) {
  const int64_t V = model.config().vocab_size, P = static_cast<int64_t>(prompt.size());
  FOUNDRY_CHECK(P >= 1, "generate: the prompt is empty (at least one token is needed)");
  for (int64_t i = 0; i < P; ++i)
    FOUNDRY_CHECK(prompt[static_cast<size_t>(i)] >= 0 && prompt[static_cast<size_t>(i)] < V,
                  "generate: prompt token {} at position {} is outside the vocabulary [0, {})",
                  prompt[static_cast<size_t>(i)], i, V);
  FOUNDRY_CHECK(cfg.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got {}",
                cfg.max_new_tokens);
  FOUNDRY_CHECK(cfg.stop_token < V, "generate: stop_token {} is outside the vocabulary [0, {})",
                cfg.stop_token, V);
  Sampler sampler({.temperature = cfg.temperature, .top_k = cfg.top_k, .top_p = cfg.top_p}, cfg.seed);
  GenerateResult r;
  r.stats.prompt_tokens = P;
  if (cfg.max_new_tokens == 0) return r;

  Context ctx;
  ctx.training = false;
  // The last drawn token is never fed back, so P + max_new_tokens - 1 positions suffice.
  KVCache cache = model.make_kv_cache(1, P + cfg.max_new_tokens - 1);
  const auto next = [&](const Tensor& tokens) {  // (1, n) -> the token drawn after them
    const Tensor logits = model.forward_inference(ctx, tokens, cache, /*last_only=*/true);  // (1, 1, V)
    return sampler.sample(std::span<const float>(logits.ptr<float>(), static_cast<size_t>(V)));
  };

  auto t0 = std::chrono::steady_clock::now();
  int32_t token = next(Tensor::from<int32_t>({1, P}, prompt));
  r.stats.prefill_seconds = seconds_since(t0);
  Tensor step = Tensor::empty({1, 1}, DType::i32);
  for (;;) {
    if (token == cfg.stop_token) {
      r.stats.stopped = true;
      break;
    }
    r.tokens.push_back(token);
    if (on_token) on_token(token);
    if (static_cast<int64_t>(r.tokens.size()) == cfg.max_new_tokens) break;
    t0 = std::chrono::steady_clock::now();
    step.ptr<int32_t>()[0] = token;
    token = next(step);
    r.stats.decode_seconds += seconds_since(t0);
    ++r.stats.decode_steps;
  }
  r.stats.new_tokens = static_cast<int64_t>(r.tokens.size());
  return r;
}

}  // namespace foundry
