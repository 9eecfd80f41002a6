// Generation throughput: decode tokens/s with the KV cache (models/gpt/generate.h) against
// recomputing the full training forward over the whole sequence for every new token, in the
// same run. Model: the default recipe (configs/default.yaml: hidden 128, 2 layers, 4 heads,
// 2 KV heads, FFN 352, vocab 256), random init; prompt 16 tokens, greedy, 256 new tokens.
//   BM_DecodeKvCache:   generate(); time = the 255 one-token decode steps (prefill excluded)
//   BM_DecodeRecompute: for each new token, GPTModel::forward over prompt + tokens so far and
//                       argmax of the last row; time = the same 255 steps.
// Counters: tokens/s (decode steps per second); on BM_DecodeRecompute, kv_speedup = the KV
// cache's tokens/s / the recompute tokens/s, and same_tokens = 1 when both produced the same
// 256 tokens. Run: build/release/bench/generate_bench  (a few seconds).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "foundry/models/gpt/generate.h"
#include "foundry/train/config.h"

namespace {

using namespace foundry;

constexpr int64_t kPrompt = 16, kNew = 256;

const GPTModel& model() {
  static const GPTModel m(RunConfig::parse(default_recipe_yaml(), "configs/default.yaml").model, 1234);
  return m;
}

std::vector<int32_t> prompt() {
  std::vector<int32_t> p;
  for (int64_t i = 0; i < kPrompt; ++i) p.push_back(static_cast<int32_t>((i * 37 + 11) % model().config().vocab_size));
  return p;
}

double g_kv_tokens_per_second = 0;
std::vector<int32_t> g_kv_tokens;

void BM_DecodeKvCache(benchmark::State& state) {
  const std::vector<int32_t> p = prompt();
  double steps = 0, seconds = 0;
  for (auto _ : state) {
    const GenerateResult r = generate(model(), p, {.max_new_tokens = kNew, .temperature = 0.f});
    state.SetIterationTime(r.stats.decode_seconds);
    steps += static_cast<double>(r.stats.decode_steps);
    seconds += r.stats.decode_seconds;
    g_kv_tokens = r.tokens;
  }
  g_kv_tokens_per_second = steps / seconds;
  state.counters["tokens/s"] = g_kv_tokens_per_second;
}
BENCHMARK(BM_DecodeKvCache)->Unit(benchmark::kMillisecond)->UseManualTime()->MinTime(1.0);

void BM_DecodeRecompute(benchmark::State& state) {
  const GPTModel& m = model();
  const int64_t V = m.config().vocab_size;
  double steps = 0, seconds = 0;
  std::vector<int32_t> tokens;
  for (auto _ : state) {
    std::vector<int32_t> seq = prompt();
    tokens.clear();
    double decode = 0;
    for (int64_t n = 0; n < kNew; ++n) {
      const auto t0 = std::chrono::steady_clock::now();
      Context ctx;
      ctx.training = false;
      GPTModel::Saved saved;
      const int64_t T = static_cast<int64_t>(seq.size());
      const Tensor logits = m.forward(ctx, Tensor::from<int32_t>({T}, seq), SequenceLayout::uniform(1, T), saved);
      const int32_t t = Sampler::argmax(std::span<const float>(logits.ptr<float>() + (T - 1) * V, static_cast<size_t>(V)));
      if (n > 0) decode += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      tokens.push_back(t);
      seq.push_back(t);
    }
    state.SetIterationTime(decode);
    steps += kNew - 1;
    seconds += decode;
  }
  const double rate = steps / seconds;
  state.counters["tokens/s"] = rate;
  state.counters["kv_speedup"] = g_kv_tokens_per_second / rate;
  state.counters["same_tokens"] = tokens == g_kv_tokens ? 1 : 0;
}
BENCHMARK(BM_DecodeRecompute)->Unit(benchmark::kMillisecond)->UseManualTime()->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
