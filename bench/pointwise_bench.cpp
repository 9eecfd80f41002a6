// Pointwise kernels at a transformer-sized shape (T = 2048 tokens): RMSNorm fwd+bwd (H 512),
// SwiGLU fwd+bwd (F 1408), RoPE fwd (NH 8, HD 64), and the residual add as the memory roof.
// Reports GB/s of compulsory traffic (each tensor read or written once per pass).
#include <benchmark/benchmark.h>

#include <vector>

#include "foundry/core/rng.h"
#include "foundry/ops/activation.h"
#include "foundry/ops/elementwise.h"
#include "foundry/ops/norm.h"
#include "foundry/ops/rope.h"

namespace foundry {
namespace {

constexpr int64_t T = 2048, H = 512, F = 1408, NH = 8, HD = 64;

Tensor randn(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  Philox(seed).normal_(t, 0.f, 1.f);
  return t;
}

void set_bytes(benchmark::State& state, int64_t floats_per_iter) {
  state.SetBytesProcessed(state.iterations() * floats_per_iter * 4);
}

void BM_RmsNormFwdBwd(benchmark::State& state) {
  const Tensor x = randn({T, H}, 1), w = randn({H}, 2), dy = randn({T, H}, 3);
  Tensor y = Tensor::empty({T, H}), rstd = Tensor::empty({T}), dx = Tensor::empty({T, H});
  Tensor dw = Tensor::zeros({H});
  const NormArgs args{.x = x, .weight = w, .y = y, .rstd = rstd, .dy = dy, .dx = dx, .dweight = dw};
  for (auto _ : state) {
    rmsnorm_forward(args);
    rmsnorm_backward(args);
  }
  set_bytes(state, 5 * T * H);  // fwd: x -> y; bwd: x, dy -> dx
}

void BM_SwigluFwdBwd(benchmark::State& state) {
  const Tensor x = randn({T, 2 * F}, 1), dy = randn({T, F}, 2);
  Tensor y = Tensor::empty({T, F}), dx = Tensor::empty({T, 2 * F});
  for (auto _ : state) {
    swiglu_forward({.x = x, .y = y});
    swiglu_backward({.x = x, .dy = dy, .dx = dx});
  }
  set_bytes(state, 8 * T * F);  // fwd: 2F -> F; bwd: 2F + F -> 2F
}

void BM_RopeFwd(benchmark::State& state) {
  std::vector<int32_t> p(T);
  for (int64_t t = 0; t < T; ++t) p[t] = static_cast<int32_t>(t);
  const Tensor pos = Tensor::from<int32_t>({T}, p), x = randn({T, NH, HD}, 1);
  Tensor out = Tensor::empty({T, NH, HD});
  for (auto _ : state) rope_forward({.positions = pos, .x = x, .out = out});
  set_bytes(state, 2 * T * NH * HD);
}

void BM_AddFwd(benchmark::State& state) {  // the memory roof for the shapes above
  const Tensor a = randn({T, H}, 1), b = randn({T, H}, 2);
  Tensor out = Tensor::empty({T, H});
  for (auto _ : state) add_forward({.a = a, .b = b, .out = out});
  set_bytes(state, 3 * T * H);
}

BENCHMARK(BM_RmsNormFwdBwd)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SwigluFwdBwd)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RopeFwd)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AddFwd)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace foundry

BENCHMARK_MAIN();
