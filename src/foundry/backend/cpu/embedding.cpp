// CPU embedding: out[n, :] = table[ids[n], :]; backward dtable[ids[n], :] += dout[n, :].
// The backward runs in parallel over column blocks of H: each thread owns whole columns of
// dtable and adds the rows in order n = 0..N-1, so repeated ids never race and the result
// is bit-identical for any thread count.
#include "foundry/backend/cpu/embedding.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

namespace foundry::cpu {

namespace {

constexpr int64_t kParallelMin = int64_t{1} << 14;  // elements; below this threads cost more

// Every id in [0, V); otherwise an error naming the first bad id and its position.
void check_ids(std::string_view op, const int32_t* ids, int64_t N, int64_t V) {
  int64_t bad = N;
#pragma omp parallel for simd reduction(min : bad) if (N >= kParallelMin)
  for (int64_t n = 0; n < N; ++n)
    if (ids[n] < 0 || ids[n] >= V) bad = std::min(bad, n);
  FOUNDRY_CHECK(bad == N, "{}: id {} at position {} is out of range [0, {})", op, ids[bad], bad, V);
}

}  // namespace

void embedding_forward(const EmbeddingArgs& args) {
  const int64_t N = args.ids.size(0), V = args.table.size(0), H = args.table.size(1);
  const int32_t* ids = args.ids.ptr<int32_t>();
  const float* table = args.table.ptr<float>();
  float* out = args.out.ptr<float>();
  check_ids("embedding_forward", ids, N, V);
#pragma omp parallel for schedule(static) if (N * H >= kParallelMin)
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(out + n * H, table + ids[n] * H, static_cast<size_t>(H) * sizeof(float));
}

// dtable accumulated (+=).
void embedding_backward(const EmbeddingArgs& args) {
  const int64_t N = args.ids.size(0), V = args.dtable.size(0), H = args.dtable.size(1);
  const int32_t* ids = args.ids.ptr<int32_t>();
  const float* dout = args.dout.ptr<float>();
  float* dtable = args.dtable.ptr<float>();
  check_ids("embedding_backward", ids, N, V);
  // Column blocks: a multiple of 16 floats (one cache line), about one per thread, <= 512.
  const bool parallel = N * H >= kParallelMin;
  const int64_t nt = parallel ? omp_get_max_threads() : 1;
  const int64_t block = std::clamp<int64_t>(((H + nt - 1) / nt + 15) & ~int64_t{15}, 16, 512);
  const int64_t nblocks = (H + block - 1) / block;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t j0 = b * block, len = std::min(block, H - j0);
    for (int64_t n = 0; n < N; ++n) {
      const float* src = dout + n * H + j0;
      float* dst = dtable + ids[n] * H + j0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) dst[j] += src[j];
    }
  }
}

}  // namespace foundry::cpu
