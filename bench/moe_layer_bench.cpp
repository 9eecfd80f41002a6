// MoE layer (moe/moe_layer.h: router -> permute -> grouped SwiGLU experts -> unpermute) forward +
// backward against a dense SwiGLU MLP (nn/mlp.h) of the same active FLOPs, timed back to back in
// the same iteration (same machine load).
//
// T = 2048 tokens, H = 512; MoE: E = 8 experts, top-2, expert FFN F = 1024, softmax after top-k,
// aux_loss 1e-2 (the layers of configs/bench/moe-small.yaml). Dense: FFN 2 x 1024 = 2048, so
// both do 3 * 2 * H * 2048 FLOPs per token and pass (SwiGLU fc1 + fc2), x3 for forward +
// backward: 6 * 3 * H * 2048 * T in all (the router's T x E x H GEMMs are extra work of the MoE).
// Routing:
//   random:  random init (std 0.02) and x ~ N(0, 1): roughly balanced (each expert 10-15%)
//   uniform: router weight W[e, e] = 1 (else 0) and x[t, t % 8] += 16, x[t, (t+1) % 8] += 8, so
//            token t goes to experts t % 8 and (t+1) % 8: exactly T k / E = 512 rows each
// Counters: GFLOPS (MoE, active FLOPs), GFLOPS_dense, ratio = GFLOPS / GFLOPS_dense (target >= 0.8),
// max_expert_share (the largest expert's fraction of the T k rows; 1/8 = balanced).
// MoELayer/phases: MoELayer::forward / backward step by step (random routing), ms per phase,
// and the dense MLP's forward / backward in the same iteration.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "foundry/core/context.h"
#include "foundry/core/rng.h"
#include "foundry/moe/moe_layer.h"
#include "foundry/nn/mlp.h"
#include "foundry/ops/moe_rows.h"

namespace {

using foundry::Tensor;

constexpr int64_t kTokens = 2048, kHidden = 512, kExperts = 8, kTopk = 2, kExpertFfn = 1024;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Tensor randn(int64_t rows, int64_t cols, uint64_t seed) {
  Tensor t = Tensor::empty({rows, cols});
  foundry::Philox(seed).normal_(t, 0.f, 1.f);
  return t;
}

void bm_moe_vs_dense(benchmark::State& state, bool uniform) {
  foundry::MoELayer moe({.router = {.hidden = kHidden, .num_experts = kExperts, .topk = kTopk,
                                    .load_balancing_type = {"aux_loss"}, .aux_loss_coeff = {1e-2f}},
                         .moe_ffn_hidden_size = kExpertFfn});
  foundry::MLP mlp({.hidden = kHidden, .ffn = kTopk * kExpertFfn});
  foundry::ParamTable moe_params, mlp_params;
  moe.register_params(moe_params, "mlp");
  mlp.register_params(mlp_params, "mlp");
  moe_params.allocate(1);
  mlp_params.allocate(2);
  Tensor x = randn(kTokens, kHidden, 3);
  const Tensor dy = randn(kTokens, kHidden, 4);
  if (uniform) {
    float* w = moe.router.weight.value.ptr<float>();
    for (int64_t i = 0; i < kExperts * kHidden; ++i) w[i] = 0.f;
    for (int64_t e = 0; e < kExperts; ++e) w[e * kHidden + e] = 1.f;
    float* xp = x.ptr<float>();
    for (int64_t t = 0; t < kTokens; ++t) {
      xp[t * kHidden + t % kExperts] += 16.f;
      xp[t * kHidden + (t + 1) % kExperts] += 8.f;
    }
  }
  foundry::Context ctx;
  auto run_moe = [&] {
    foundry::MoELayer::Saved s;
    moe.forward(ctx, x, kTokens, s);
    moe.backward(ctx, dy, s, 1.f);
    return s.routing.tokens_per_expert;
  };
  auto run_dense = [&] {
    foundry::MLP::Saved s;
    mlp.forward(ctx, x, s);
    mlp.backward(ctx, dy, s);
  };
  const Tensor counts = run_moe();  // warm-up (primitives, arenas)
  run_dense();

  double t_moe = 0, t_dense = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    run_moe();
    const double dt = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    run_dense();
    t_dense += seconds_since(t0);
    t_moe += dt;
    state.SetIterationTime(dt);
  }
  const double gflop = 6.0 * 3.0 * kHidden * (kTopk * kExpertFfn) * kTokens * 1e-9 *
                       static_cast<double>(state.iterations());
  state.counters["GFLOPS"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
  state.counters["GFLOPS_dense"] = gflop / t_dense;
  state.counters["ratio"] = t_dense / t_moe;
  int64_t max_rows = 0;
  for (int64_t e = 0; e < kExperts; ++e) max_rows = std::max(max_rows, counts.ptr<int64_t>()[e]);
  state.counters["max_expert_share"] = static_cast<double>(max_rows) / (kTokens * kTopk);
}

// The MoE layer's forward + backward step by step (MoELayer::forward / backward inlined), each
// phase timed: counters in ms per iteration.
void bm_moe_phases(benchmark::State& state) {
  foundry::MoELayer moe({.router = {.hidden = kHidden, .num_experts = kExperts, .topk = kTopk,
                                    .load_balancing_type = {"aux_loss"}, .aux_loss_coeff = {1e-2f}},
                         .moe_ffn_hidden_size = kExpertFfn});
  foundry::MLP mlp({.hidden = kHidden, .ffn = kTopk * kExpertFfn});
  foundry::ParamTable params, mlp_params;
  moe.register_params(params, "mlp");
  mlp.register_params(mlp_params, "mlp");
  params.allocate(1);
  mlp_params.allocate(2);
  const Tensor x = randn(kTokens, kHidden, 3);
  const Tensor dy = randn(kTokens, kHidden, 4);
  foundry::Context ctx;
  enum { kRouterFwd, kDispatch, kExpertsFwd, kCombine, kCombineBwd, kExpertsBwd, kDispatchBwd, kRouterBwd,
         kDenseFwd, kDenseBwd, kPhases };
  const char* names[kPhases] = {"router_fwd_ms",  "dispatch_ms",     "experts_fwd_ms", "combine_ms",
                                "combine_bwd_ms", "experts_bwd_ms",  "dispatch_bwd_ms", "router_bwd_ms",
                                "dense_fwd_ms",   "dense_bwd_ms"};
  double t[kPhases] = {};
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto t0 = start;
    auto lap = [&](int phase) {
      const auto now = std::chrono::steady_clock::now();
      t[phase] += std::chrono::duration<double>(now - t0).count();
      t0 = now;
    };
    foundry::MoELayer::Saved s;
    s.routing = moe.router.forward(ctx, x, s.router, kTokens);
    lap(kRouterFwd);
    foundry::Dispatched d = moe.dispatcher->dispatch(ctx, x, s.routing.routing_map, s.routing.probs);
    s.handle = d.handle;
    lap(kDispatch);
    const Tensor rows = moe.experts.forward(ctx, d.rows, d.probs, d.handle.tokens_per_expert, s.experts);
    lap(kExpertsFwd);
    const Tensor y = moe.dispatcher->combine(ctx, rows, s.handle);
    lap(kCombine);
    const Tensor d_rows = moe.dispatcher->combine_backward(ctx, dy, s.handle);
    lap(kCombineBwd);
    const foundry::GroupedExperts::Grads g = moe.experts.backward(ctx, d_rows, s.experts);
    lap(kExpertsBwd);
    const Tensor dx = moe.dispatcher->dispatch_backward(ctx, g.dx, s.handle);
    lap(kDispatchBwd);
    Tensor dprobs = Tensor::empty(s.routing.probs.shape());
    foundry::probs_scatter({.drow = g.dprobs, .row_token = s.handle.row_token,
                            .tokens_per_expert = s.handle.tokens_per_expert, .dprobs = dprobs});
    moe.router.backward(ctx, dprobs, s.router, 1.f, dx);  // dx += the router's input gradient
    lap(kRouterBwd);
    state.SetIterationTime(std::chrono::duration<double>(t0 - start).count());
    foundry::MLP::Saved ms;
    mlp.forward(ctx, x, ms);
    lap(kDenseFwd);
    mlp.backward(ctx, dy, ms);
    lap(kDenseBwd);
  }
  for (int p = 0; p < kPhases; ++p) state.counters[names[p]] = t[p] * 1e3 / static_cast<double>(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  bool has_min_time = false;
  for (int i = 1; i < argc; ++i)
    has_min_time = has_min_time || std::string(argv[i]).rfind("--benchmark_min_time", 0) == 0;
  std::string min_time = "--benchmark_min_time=1";
  if (!has_min_time) args.push_back(min_time.data());
  int n = static_cast<int>(args.size());
  for (bool uniform : {false, true})
    benchmark::RegisterBenchmark(uniform ? "MoELayer/fwd+bwd/uniform" : "MoELayer/fwd+bwd/random",
                                 bm_moe_vs_dense, uniform)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("MoELayer/phases/random", bm_moe_phases)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
