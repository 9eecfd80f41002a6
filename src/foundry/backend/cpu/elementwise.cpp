// CPU residual add: out = a + b; backward da += dout, db += dout (either may be empty).
// CPU bias add: out[n, c] = x[n, c] + bias[c]; backward dbias[c] += sum_n dout[n, c] (f64 sums per
// thread over a block of rows, then added in thread order: deterministic for a thread count).
#include "foundry/backend/cpu/elementwise.h"

#include <omp.h>

#include <vector>

namespace foundry::cpu {

namespace {
constexpr int64_t kParallelMin = int64_t{1} << 15;  // elements; below this threads cost more
}  // namespace

// out = a + b, element by element (out may alias a or b: same index read then written).
void add_forward(const AddArgs& args) {
  const int64_t n = args.out.numel();
  const float* a = args.a.ptr<float>();
  const float* b = args.b.ptr<float>();
  float* out = args.out.ptr<float>();
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

// Accumulates: da += dout, db += dout. da and db may be the same tensor (out = x + x).
void add_backward(const AddArgs& args) {
  const int64_t n = args.dout.numel();
  const float* dout = args.dout.ptr<float>();
  float* da = args.da.defined() ? args.da.ptr<float>() : nullptr;
  float* db = args.db.defined() ? args.db.ptr<float>() : nullptr;
  if (da != nullptr && da == db) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) da[i] += 2.f * dout[i];
  } else if (da != nullptr && db != nullptr) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      da[i] += dout[i];
      db[i] += dout[i];
    }
  } else if (da != nullptr || db != nullptr) {
    float* d = da != nullptr ? da : db;
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) d[i] += dout[i];
  }
}

// out = x + bias per row (out may alias x: each element read then written).
void bias_add_forward(const BiasAddArgs& args) {
  const int64_t N = args.x.size(0), C = args.x.size(1);
  const float* x = args.x.ptr<float>();
  const float* b = args.bias.ptr<float>();
  float* out = args.out.ptr<float>();
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = x[n * C + c] + b[c];
  }
}

// dbias += column sums of dout: each thread sums a static block of rows in f64, then the partial
// sums are added to dbias in thread order.
void bias_add_backward(const BiasAddArgs& args) {
  const int64_t N = args.dout.size(0), C = args.dout.size(1);
  const float* dout = args.dout.ptr<float>();
  float* db = args.dbias.ptr<float>();
  const bool parallel = N * C >= kParallelMin;
  const int threads = parallel ? omp_get_max_threads() : 1;
  std::vector<double> partial(static_cast<size_t>(threads) * static_cast<size_t>(C), 0.0);
#pragma omp parallel num_threads(threads) if (parallel)
  {
    double* acc = partial.data() + static_cast<size_t>(omp_get_thread_num()) * static_cast<size_t>(C);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) acc[c] += dout[n * C + c];
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int t = 0; t < threads; ++t) sum += partial[static_cast<size_t>(t) * static_cast<size_t>(C) + static_cast<size_t>(c)];
    db[c] += static_cast<float>(sum);
  }
}

}  // namespace foundry::cpu
