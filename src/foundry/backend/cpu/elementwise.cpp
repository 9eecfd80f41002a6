// CPU residual add: out = a + b; backward da += dout, db += dout (either may be empty).
#include "foundry/backend/cpu/elementwise.h"

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

}  // namespace foundry::cpu
