// Gradient buckets (optim/grad_buckets.h) against one all-reduce after the backward, under mpirun:
//   mpirun -np 2 -x OMP_NUM_THREADS=1 build/release/bench/grad_buckets_bench [--layers 8] [--reps 5]
// A mock backward over L layers, each with one 1024 x 1024 f32 weight (4 MiB; L = 8: 32 MiB of
// gradients), computes dW_l = X_l^T dY_l (T = 512 tokens: a GEMM of 2 T 1024^2 FLOPs) for
// l = L-1 .. 0, then the gradients are summed over the ranks:
//   compute   the backward alone (no communication): the floor
//   plain     backward, then all_reduce of the whole gradient buffer (train_step today)
//   async     backward, then all_reduce_async of the whole buffer + wait (MPI_Iallreduce)
//   B MB      backward with mark_ready(l) after layer l, then finish(), buckets of B MB
// Every variant runs in each repetition, back to back (same machine load); the median step time
// over the repetitions is reported, with the exposed communication (variant - compute) relative to
// plain's. Open MPI progresses a non-blocking collective only inside MPI calls, so on CPU a bucket
// advances mostly when the next bucket starts and in the final waits: expect partial overlap.
// Results equal plain's (max_abs_diff; 0 at 2 ranks, where every sum is a + b).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/core/rng.h"
#include "foundry/ops/gemm.h"
#include "foundry/optim/grad_buckets.h"

namespace foundry {
namespace {

constexpr int64_t kDim = 1024, kTokens = 512;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(int argc, char** argv) {
  int layers = 8, reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--layers") layers = std::stoi(argv[i + 1]);
    else if (a == "--reps") reps = std::stoi(argv[i + 1]);
    else FOUNDRY_CHECK(false, "usage: grad_buckets_bench [--layers L] [--reps N]");
  }
  Communicator& w = world();
  std::deque<Param> params(static_cast<size_t>(layers));
  ParamTable table;
  for (int l = 0; l < layers; ++l)
    table.add(params[static_cast<size_t>(l)], {.name = "layer." + std::to_string(l) + ".weight", .shape = {kDim, kDim}});
  table.allocate(1);
  std::vector<Tensor> x, dy;  // per layer, different on every rank
  for (int l = 0; l < layers; ++l) {
    Philox rng(1000 * static_cast<uint64_t>(w.rank()) + static_cast<uint64_t>(l));
    x.push_back(Tensor::empty({kTokens, kDim}));
    dy.push_back(Tensor::empty({kTokens, kDim}));
    rng.normal_(x.back(), 0.f, 1.f);
    rng.normal_(dy.back(), 0.f, 1.f);
  }
  const auto backward_layer = [&](int l) {  // dW_l = X_l^T dY_l
    gemm({.a = x[static_cast<size_t>(l)].view(), .b = dy[static_cast<size_t>(l)].view(),
          .c = params[static_cast<size_t>(l)].grad.view(), .trans_a = true});
  };

  const std::vector<int64_t> bucket_mb = {4, 8, 16, 40};
  std::vector<std::unique_ptr<GradBuckets>> buckets;
  for (int64_t mb : bucket_mb)
    buckets.push_back(std::make_unique<GradBuckets>(table, ParamTable::Kind::dense, w, mb * 1'000'000));
  constexpr int kFirstBuckets = 3;  // compute, plain, async, buckets...
  const int variants = kFirstBuckets + static_cast<int>(bucket_mb.size());
  std::vector<std::vector<double>> times(static_cast<size_t>(variants));
  Tensor plain_result = Tensor::empty(table.grad_buffer().shape);
  double max_abs_diff = 0;
  for (int rep = 0; rep <= reps; ++rep) {  // rep 0 warms up
    for (int v = 0; v < variants; ++v) {
      table.zero_grad();
      w.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      GradBuckets* g = v >= kFirstBuckets ? buckets[static_cast<size_t>(v - kFirstBuckets)].get() : nullptr;
      for (int l = layers - 1; l >= 0; --l) {
        backward_layer(l);
        if (g) g->mark_ready(l);
      }
      if (g) g->finish();
      if (v == 1) w.all_reduce(table.grad_buffer());
      if (v == 2) w.all_reduce_async(table.grad_buffer())->wait();
      const double t = seconds_since(t0);
      if (rep > 0) times[static_cast<size_t>(v)].push_back(w.all_reduce_sum(t) / w.size());
      const TensorView gb = table.grad_buffer();
      if (v == 1) std::memcpy(plain_result.data(), gb.data, static_cast<size_t>(gb.nbytes()));
      if (v >= 2)
        for (int64_t i = 0; i < gb.numel(); ++i)
          max_abs_diff = std::max(max_abs_diff, static_cast<double>(std::fabs(gb.ptr<float>()[i] - plain_result.ptr<float>()[i])));
    }
  }
  if (w.rank() == 0) {
    const double compute = median(times[0]), plain = median(times[1]);
    std::printf("ranks %d, %d layers x %lld x %lld f32 (%.1f MB of gradients), T = %lld, median of %d\n", w.size(),
                layers, static_cast<long long>(kDim), static_cast<long long>(kDim),
                static_cast<double>(table.grad_buffer().nbytes()) / 1e6, static_cast<long long>(kTokens), reps);
    std::printf("%-10s %8s %10s %16s %8s\n", "variant", "buckets", "step_ms", "exposed_comm_ms", "ratio");
    std::printf("%-10s %8s %10.1f %16s %8s\n", "compute", "-", 1e3 * compute, "-", "-");
    std::printf("%-10s %8d %10.1f %16.1f %8.3f\n", "plain", 1, 1e3 * plain, 1e3 * (plain - compute), 1.0);
    const double async = median(times[2]);
    std::printf("%-10s %8d %10.1f %16.1f %8.3f\n", "async", 1, 1e3 * async, 1e3 * (async - compute), async / plain);
    for (size_t b = 0; b < bucket_mb.size(); ++b) {
      const double t = median(times[b + kFirstBuckets]);
      std::printf("%-10s %8d %10.1f %16.1f %8.3f\n", (std::to_string(bucket_mb[b]) + " MB").c_str(),
                  buckets[b]->num_buckets(), 1e3 * t, 1e3 * (t - compute), t / plain);
    }
    std::printf("max_abs_diff vs plain: %g\n", max_abs_diff);
  }
  return 0;
}

}  // namespace
}  // namespace foundry

int main(int argc, char** argv) {
  try {
    return foundry::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grad_buckets_bench: %s\n", e.what());
    foundry::abort_world(1);
  }
}
