// Attention throughput (ops/attention.h) against this machine's f32 GEMM roof.
//   BM_Attention*: S = 2048, HD = 64, NH = NKV = 8, causal, B = 1. FLOPs use the standard
//   count (FlashAttention-2 paper, section 4.1): forward 4 S^2 HD per head, backward 2.5x the
//   forward, both halved when causal. Counters: GFLOP/s, and gemm_ratio = GFLOP/s / the GEMM
//   roof below (target >= 0.40 for forward+backward).
//   BM_GemmRoof: oneDNN matmul, M = 2048, K = 512, N = 2048 f32 (written directly with dnnl here).
//   BM_BlockGemm: the 64 x 64 x 64 block product single-threaded, the attention micro-kernel vs
//   dnnl_sgemm (why the kernel does not call dnnl_sgemm).
// Run: build/release/bench/attention_bench  (about 20-40 s with default settings).
#include <benchmark/benchmark.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <oneapi/dnnl/dnnl.hpp>

#include "foundry/backend/cpu/attention_kernels.h"
#include "foundry/core/rng.h"
#include "foundry/core/tensor.h"
#include "foundry/ops/attention.h"

namespace {

using foundry::Tensor;

Tensor randn(const foundry::Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  foundry::Philox(seed).normal_(t, 0.f, 1.f);
  return t;
}

// oneDNN f32 matmul c (M x N) = a (M x K) b (K x N), all threads.
struct DnnlMatmul {
  static constexpr int64_t M = 2048, K = 512, N = 2048;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  Tensor a = randn({M, K}, 1), b = randn({K, N}, 2), c = Tensor::empty({M, N});
  dnnl::memory::desc a_md{{M, K}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab};
  dnnl::memory::desc b_md{{K, N}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab};
  dnnl::memory::desc c_md{{M, N}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab};
  dnnl::matmul prim{dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), eng)};
  dnnl::memory am{a_md, eng, a.data()}, bm{b_md, eng, b.data()}, cm{c_md, eng, c.data()};
  void run() {
    prim.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    stream.wait();
  }
  static double flops() { return 2.0 * M * N * K; }
};

// GEMM roof in GFLOP/s, measured once per process (best of a few short runs).
double gemm_roof_gflops() {
  static const double roof = [] {
    DnnlMatmul mm;
    mm.run();
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 4; ++i) mm.run();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, 4 * DnnlMatmul::flops() / s * 1e-9);
    }
    return best;
  }();
  return roof;
}

void BM_GemmRoof(benchmark::State& state) {
  DnnlMatmul mm;
  mm.run();
  for (auto _ : state) mm.run();
  state.counters["GFLOP/s"] =
      benchmark::Counter(DnnlMatmul::flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GemmRoof)->Unit(benchmark::kMillisecond)->UseRealTime();

struct AttentionProblem {
  static constexpr int64_t S = 2048, NH = 8, NKV = 8, HD = 64;
  Tensor q = randn({S, NH, HD}, 3), k = randn({S, NKV, HD}, 4), v = randn({S, NKV, HD}, 5);
  Tensor dout = randn({S, NH, HD}, 6);
  Tensor out = Tensor::empty({S, NH, HD}), lse = Tensor::empty({S, NH});
  Tensor dq = Tensor::empty({S, NH, HD}), dk = Tensor::empty({S, NKV, HD}),
         dv = Tensor::empty({S, NKV, HD});
  foundry::AttentionArgs args() const {
    return {.q = q,
            .k = k,
            .v = v,
            .causal = true,
            .out = out,
            .lse = lse,
            .dout = dout,
            .dq = dq,
            .dk = dk,
            .dv = dv};
  }
  static double forward_flops() { return 4.0 * S * S * HD * NH / 2; }  // causal: half
};

// Times each iteration (wall clock: the op is multi-threaded) and reports GFLOP/s, the GEMM
// roof and their ratio.
template <class F>
void run_and_report(benchmark::State& state, double flops, F&& body) {
  const double roof = gemm_roof_gflops();
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    seconds += s;
  }
  const double gflops = flops * 1e-9 * static_cast<double>(state.iterations()) / seconds;
  state.counters["GFLOP/s"] = gflops;
  state.counters["gemm_roof_GFLOP/s"] = roof;
  state.counters["gemm_ratio"] = gflops / roof;
}

void BM_AttentionForwardBackward(benchmark::State& state) {
  gemm_roof_gflops();
  AttentionProblem p;
  const auto a = p.args();
  foundry::attention_forward(a);
  run_and_report(state, 3.5 * AttentionProblem::forward_flops(), [&] {
    foundry::attention_forward(a);
    foundry::attention_backward(a);
  });
}
BENCHMARK(BM_AttentionForwardBackward)->Unit(benchmark::kMillisecond)->UseManualTime();

void BM_AttentionForward(benchmark::State& state) {
  gemm_roof_gflops();
  AttentionProblem p;
  const auto a = p.args();
  run_and_report(state, AttentionProblem::forward_flops(), [&] { foundry::attention_forward(a); });
}
BENCHMARK(BM_AttentionForward)->Unit(benchmark::kMillisecond)->UseManualTime();

void BM_AttentionBackward(benchmark::State& state) {
  gemm_roof_gflops();
  AttentionProblem p;
  const auto a = p.args();
  foundry::attention_forward(a);
  run_and_report(state, 2.5 * AttentionProblem::forward_flops(),
                 [&] { foundry::attention_backward(a); });
}
BENCHMARK(BM_AttentionBackward)->Unit(benchmark::kMillisecond)->UseManualTime();

// 64 x 64 x 64 block products C = A B (the P V shape), every thread on its own blocks inside one
// OpenMP region, as in the attention kernel: the attention micro-kernel (arg 0) or dnnl_sgemm
// (arg 1, which runs single-threaded inside a parallel region).
void BM_BlockGemm(benchmark::State& state) {
  constexpr int64_t n = 64, reps = 256;
  const int nthr = omp_get_max_threads();
  const Tensor a = randn({nthr, n, n}, 7), b = randn({nthr, n, n}, 8);
  Tensor c = Tensor::empty({nthr, n, n});
  for (auto _ : state) {
#pragma omp parallel
    {
      const int t = omp_get_thread_num();
      const float* pa = a.ptr<float>() + t * n * n;
      const float* pb = b.ptr<float>() + t * n * n;
      float* pc = c.ptr<float>() + t * n * n;
      for (int rep = 0; rep < reps; ++rep) {
        if (state.range(0) == 0)
          foundry::cpu::attn::small_gemm(n, n, n, pa, n, 1, pb, n, pc, n, true);
        else
          dnnl_sgemm('N', 'N', n, n, n, 1.f, pa, n, pb, n, 1.f, pc, n);
      }
    }
    benchmark::DoNotOptimize(c.data());
  }
  state.SetLabel(state.range(0) == 0 ? "attention micro-kernel" : "dnnl_sgemm");
  state.counters["GFLOP/s"] = benchmark::Counter(nthr * reps * 2.0 * n * n * n * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BlockGemm)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
