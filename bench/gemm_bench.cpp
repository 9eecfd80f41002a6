// GEMM throughput: foundry::gemm against the oneDNN matmul primitive called directly (the peak
// foundry can reach), on the GEMMs of a transformer layer with T = 2048 tokens.
//
// A Linear with weight W (out, in) (Megatron layout) runs three GEMMs per step:
//   fwd  Y  (T, out) = X (T, in) @ W^T           M = T,   K = in,  N = out   trans_b
//   dX   dX (T, in)  = dY (T, out) @ W           M = T,   K = out, N = in
//   dW   dW (out, in) += dY^T @ X                 M = out, K = T,   N = in    trans_a, beta = 1
// for (in, out) in {(512, 512), (512, 1536), (512, 2816), (1408, 512), (512, 32768)}: attention
// projections, fused QKV, fused SwiGLU up/gate, down projection and the LM head. Small shapes show
// the per-call overhead (validation, cache lookup, memory objects).
//
// Each iteration times foundry::gemm and the direct primitive back to back on the same inputs,
// so both see the same machine load. Counters:
//   GFLOPS         foundry's rate (2 M N K per call)
//   GFLOPS_direct  the direct primitive's rate
//   ratio          GFLOPS / GFLOPS_direct (target >= 0.90)
// Peak/<dtype> reports cpu::measure_peak_gflops (M=2048, K=512, N=2048), the roof used for MFU.
// Default --benchmark_min_time is 0.2 s per benchmark (a full run takes well under a minute).
#include <benchmark/benchmark.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "foundry/backend/cpu/gemm.h"
#include "foundry/ops/gemm.h"

namespace {

using foundry::DType;
using foundry::Tensor;
using dnnl::memory;

struct Case {
  std::string name;
  int64_t M, N, K;
  bool trans_a = false, trans_b = false;
  float beta = 0.f;
};

std::vector<Case> cases() {
  constexpr int64_t T = 2048;
  std::vector<Case> out;
  for (auto [in, o] : {std::pair<int64_t, int64_t>{512, 512}, {512, 1536}, {512, 2816},
                       {1408, 512}, {512, 32768}}) {
    const std::string dims = std::to_string(in) + "x" + std::to_string(o);
    out.push_back({"fwd/" + dims, T, o, in, false, true, 0.f});
    out.push_back({"dX/" + dims, T, in, o, false, false, 0.f});
    out.push_back({"dW/" + dims, o, in, T, true, false, 1.f});
  }
  out.push_back({"small/64x64x64", 64, 64, 64});
  out.push_back({"small/16x16x16", 16, 16, 16});
  return out;
}

// The same GEMM as a oneDNN matmul built and run directly: no validation, no cache, memory
// objects created once.
struct Direct {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::matmul prim;
  memory a, b, c;

  Direct(const Case& cs, DType dtype, void* pa, void* pb, void* pc) {
    const auto dt = dtype == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    const int64_t M = cs.M, N = cs.N, K = cs.K;
    const memory::desc a_md({M, K}, dt, cs.trans_a ? memory::dims{1, M} : memory::dims{K, 1});
    const memory::desc b_md({K, N}, dt, cs.trans_b ? memory::dims{1, K} : memory::dims{N, 1});
    const memory::desc c_md({M, N}, memory::data_type::f32, memory::dims{N, 1});
    dnnl::primitive_attr attr;
    if (cs.beta != 0.f) {
      dnnl::post_ops po;
      po.append_sum(cs.beta);
      attr.set_post_ops(po);
    }
    prim = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), attr, eng));
    a = memory(a_md, eng, pa);
    b = memory(b_md, eng, pb);
    c = memory(c_md, eng, pc);
  }
  void run() {
    prim.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    strm.wait();
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void bm_gemm(benchmark::State& state, const Case& cs, DType dtype) {
  const int64_t a_rows = cs.trans_a ? cs.K : cs.M, a_cols = cs.trans_a ? cs.M : cs.K;
  const int64_t b_rows = cs.trans_b ? cs.N : cs.K, b_cols = cs.trans_b ? cs.K : cs.N;
  const Tensor a = Tensor::full({a_rows, a_cols}, 0.01f, dtype);
  const Tensor b = Tensor::full({b_rows, b_cols}, 0.01f, dtype);
  const Tensor c = Tensor::zeros({cs.M, cs.N}), c_direct = Tensor::zeros({cs.M, cs.N});
  const foundry::GemmArgs args{.a = a, .b = b, .c = c, .trans_a = cs.trans_a,
                               .trans_b = cs.trans_b, .beta = cs.beta};
  Direct direct(cs, dtype, a.data(), b.data(), c_direct.data());
  foundry::gemm(args);  // warm-up: primitive build, JIT, page faults
  direct.run();

  double t_foundry = 0, t_direct = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    foundry::gemm(args);
    const double dt = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    direct.run();
    t_direct += seconds_since(t0);
    t_foundry += dt;
    state.SetIterationTime(dt);
  }
  const double gflop = 2.0 * cs.M * cs.N * cs.K * 1e-9 * static_cast<double>(state.iterations());
  state.counters["GFLOPS"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
  state.counters["GFLOPS_direct"] = gflop / t_direct;
  state.counters["ratio"] = t_direct / t_foundry;
  state.SetLabel(foundry::cpu::gemm_impl_name(args));
}

void bm_peak(benchmark::State& state, DType dtype) {
  double gflops = 0;
  for (auto _ : state) gflops = foundry::cpu::measure_peak_gflops(dtype, 0.2);
  state.counters["GFLOPS"] = gflops;
}

}  // namespace

int main(int argc, char** argv) {
  // A default --benchmark_min_time that keeps the whole run short; a flag given by the user wins.
  std::vector<char*> args(argv, argv + argc);
  bool has_min_time = false;
  for (int i = 1; i < argc; ++i)
    has_min_time = has_min_time || std::string(argv[i]).rfind("--benchmark_min_time", 0) == 0;
  std::string min_time = "--benchmark_min_time=0.2";
  if (!has_min_time) args.push_back(min_time.data());
  int n = static_cast<int>(args.size());

  for (DType dtype : {DType::f32, DType::bf16}) {
    const std::string dt(foundry::dtype_name(dtype));
    benchmark::RegisterBenchmark(("Peak/" + dt).c_str(), bm_peak, dtype)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
    for (const Case& cs : cases()) {
      auto* b = benchmark::RegisterBenchmark(("Gemm/" + dt + "/" + cs.name).c_str(), bm_gemm, cs, dtype)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond);
      // The LM-head GEMMs (~69 GFLOP, 0.1-0.3 s) would get one or two iterations from the
      // min-time rule; three keep their ratio from hanging on a single noisy call.
      if (2.0 * cs.M * cs.N * cs.K > 2e10) b->Iterations(3);
    }
  }
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
