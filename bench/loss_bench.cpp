// Fused cross-entropy throughput at a GPT-sized vocabulary: N = 2048 tokens, V = 32768.
// GB/s counts the minimum memory traffic: logits read once (4 N V bytes), plus dlogits written
// once (4 N V bytes) when the backward is fused in. In place (dlogits aliases logits) is how the
// trainer calls it; the separate-buffer case writes to fresh memory.
#include <benchmark/benchmark.h>

#include "foundry/core/rng.h"
#include "foundry/ops/loss.h"

namespace foundry {
namespace {

constexpr int64_t N = 2048, V = 32768;

struct Inputs {
  Tensor logits = Tensor::empty({N, V});
  Tensor targets = Tensor::empty({N}, DType::i32);
  Inputs() {
    Philox(1).normal_(logits, 0.f, 2.f);
    for (int64_t n = 0; n < N; ++n) targets.ptr<int32_t>()[n] = static_cast<int32_t>((n * 7919) % V);
  }
};

void report(benchmark::State& state, double bytes_per_iter) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iter * static_cast<double>(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

void BM_CrossEntropyForward(benchmark::State& state) {
  Inputs in;
  for (auto _ : state) {
    const auto r = cross_entropy_fused({.logits = in.logits, .targets = in.targets, .z_loss_coeff = 1e-4f});
    benchmark::DoNotOptimize(r.loss);
  }
  report(state, 4.0 * N * V);
}

void BM_CrossEntropyFwdBwdInPlace(benchmark::State& state) {
  Inputs in;
  for (auto _ : state) {
    // Later iterations run on the previous gradients: the same work, finite values.
    const auto r = cross_entropy_fused(
        {.logits = in.logits, .targets = in.targets, .z_loss_coeff = 1e-4f, .dlogits = in.logits});
    benchmark::DoNotOptimize(r.loss);
  }
  report(state, 8.0 * N * V);
}

void BM_CrossEntropyFwdBwdSeparate(benchmark::State& state) {
  Inputs in;
  const Tensor dlogits = Tensor::zeros({N, V});
  for (auto _ : state) {
    const auto r = cross_entropy_fused(
        {.logits = in.logits, .targets = in.targets, .z_loss_coeff = 1e-4f, .dlogits = dlogits});
    benchmark::DoNotOptimize(r.loss);
  }
  report(state, 8.0 * N * V);
}

BENCHMARK(BM_CrossEntropyForward)->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();
BENCHMARK(BM_CrossEntropyFwdBwdInPlace)->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();
BENCHMARK(BM_CrossEntropyFwdBwdSeparate)->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();

}  // namespace
}  // namespace foundry

BENCHMARK_MAIN();
