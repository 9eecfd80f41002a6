// Grouped GEMM (ops/grouped_gemm.h) for the expert MLP of an MoE layer against ONE gemm of the
// same total FLOPs, timed back to back in the same run (same machine load).
//
// T = 2048 tokens routed top-2 -> N = 4096 permuted rows over E = 8 experts with a skewed
// distribution (30%, 20%, 15%, 12%, 10%, 7%, 4%, 2% of the rows); hidden K = 512, expert
// output Nout = 2048 (an fc1 of 2048 or a fused SwiGLU up/gate of 2 x 1024). The three GEMMs
// of a grouped Linear with weights w (E, out, in):
//   fwd  y_g = x_g w_g^T           vs  gemm M = 4096, K = 512,  N = 2048, trans_b
//   dX   dx_g = dy_g w_g           vs  gemm M = 4096, K = 2048, N = 512
//   dW   dw_g += dy_g^T x_g        vs  gemm M = 2048, K = 4096, N = 512, trans_a, beta = 1
// "fixed": the same distribution every call (primitives cached per group shape).
// "varying": every call a different distribution (as in training, where tokens_per_expert
// changes each step), from a pool of 64 perturbations of the skewed one.
// Counters: GFLOPS (grouped), GFLOPS_single (the one gemm), ratio = GFLOPS / GFLOPS_single
// (target >= 0.85).
#include <benchmark/benchmark.h>

#include <chrono>
#include <numeric>
#include <string>
#include <vector>

#include "foundry/core/rng.h"
#include "foundry/ops/gemm.h"
#include "foundry/ops/grouped_gemm.h"

namespace {

using foundry::DType;
using foundry::Tensor;

constexpr int64_t kRows = 4096, kExperts = 8, kHidden = 512, kOut = 2048;

// Rows per expert from fractions (the last expert takes the remainder).
std::vector<int64_t> distribution(const std::vector<double>& frac) {
  std::vector<int64_t> s;
  int64_t used = 0;
  for (size_t e = 0; e + 1 < frac.size(); ++e) {
    s.push_back(static_cast<int64_t>(frac[e] * kRows));
    used += s.back();
  }
  s.push_back(kRows - used);
  return s;
}

std::vector<std::vector<int64_t>> distributions(bool varying) {
  const std::vector<double> skew = {0.30, 0.20, 0.15, 0.12, 0.10, 0.07, 0.04, 0.02};
  if (!varying) return {distribution(skew)};
  std::vector<std::vector<int64_t>> out;
  const Tensor u = Tensor::empty({64, kExperts});
  foundry::Philox(7).uniform_(u, 0.8f, 1.2f);
  for (int i = 0; i < 64; ++i) {
    std::vector<double> f(skew);
    double sum = 0;
    for (int64_t e = 0; e < kExperts; ++e) sum += f[e] *= u.ptr<float>()[i * kExperts + e];
    for (double& x : f) x /= sum;
    out.push_back(distribution(f));
  }
  return out;
}

enum class Kind { fwd, dX, dW };

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void bm_grouped(benchmark::State& state, Kind kind, bool varying, DType dtype) {
  const auto dists = distributions(varying);
  std::vector<Tensor> sizes;
  for (const auto& d : dists) sizes.push_back(Tensor::from<int64_t>({kExperts}, d));
  const Tensor x = Tensor::full({kRows, kHidden}, 0.01f, dtype);
  const Tensor dy = Tensor::full({kRows, kOut}, 0.01f, dtype);
  const Tensor w = Tensor::full({kExperts, kOut, kHidden}, 0.01f, dtype);
  const Tensor w1 = Tensor::full({kOut, kHidden}, 0.01f, dtype);  // the single GEMM's weight
  Tensor y = Tensor::zeros({kRows, kOut}), dx = Tensor::zeros({kRows, kHidden});
  Tensor dw = Tensor::zeros({kExperts, kOut, kHidden}), dw1 = Tensor::zeros({kOut, kHidden});

  auto grouped = [&](const Tensor& gs) {
    switch (kind) {
      case Kind::fwd: foundry::grouped_gemm({.a = x, .b = w, .c = y, .group_sizes = gs}); break;
      case Kind::dX:
        foundry::grouped_gemm({.a = dy, .b = w, .c = dx, .group_sizes = gs, .trans_b = false});
        break;
      case Kind::dW:
        foundry::grouped_gemm({.a = dy, .b = x, .c = dw, .group_sizes = gs, .weight_grad = true,
                               .beta = 1.f});
        break;
    }
  };
  auto single = [&] {
    switch (kind) {
      case Kind::fwd: foundry::gemm({.a = x, .b = w1, .c = y, .trans_b = true}); break;
      case Kind::dX: foundry::gemm({.a = dy, .b = w1, .c = dx}); break;
      case Kind::dW: foundry::gemm({.a = dy, .b = x, .c = dw1, .trans_a = true, .beta = 1.f}); break;
    }
  };
  grouped(sizes[0]);  // warm-up
  single();

  double t_grouped = 0, t_single = 0;
  size_t i = 0;
  for (auto _ : state) {
    const Tensor& gs = sizes[i++ % sizes.size()];
    auto t0 = std::chrono::steady_clock::now();
    grouped(gs);
    const double dt = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    single();
    t_single += seconds_since(t0);
    t_grouped += dt;
    state.SetIterationTime(dt);
  }
  const double gflop = 2.0 * kRows * kOut * kHidden * 1e-9 * static_cast<double>(state.iterations());
  state.counters["GFLOPS"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
  state.counters["GFLOPS_single"] = gflop / t_single;
  state.counters["ratio"] = t_single / t_grouped;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  bool has_min_time = false;
  for (int i = 1; i < argc; ++i)
    has_min_time = has_min_time || std::string(argv[i]).rfind("--benchmark_min_time", 0) == 0;
  std::string min_time = "--benchmark_min_time=0.5";
  if (!has_min_time) args.push_back(min_time.data());
  int n = static_cast<int>(args.size());
  for (DType dtype : {DType::f32, DType::bf16})
    for (bool varying : {false, true})
      for (auto [kind, name] : {std::pair{Kind::fwd, "fwd"}, {Kind::dX, "dX"}, {Kind::dW, "dW"}}) {
        const std::string label = std::string("GroupedGemm/") + std::string(foundry::dtype_name(dtype)) + "/" +
                                  (varying ? "varying/" : "fixed/") + name;
        benchmark::RegisterBenchmark(label.c_str(), bm_grouped, kind, varying, dtype)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
