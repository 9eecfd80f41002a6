// CPU grouped GEMM: the groups are cut into work items that one OpenMP loop spreads over the
// threads (dynamic schedule, largest items first); each item is one single-threaded oneDNN
// matmul through cpu::gemm (primitive cached by shape, views into a, b and c: no copies).
//
// Why not one multi-threaded matmul per group: every oneDNN call ends in a barrier, and a
// group of a few hundred rows is too small to keep all threads busy in between, so on a
// loaded machine a 2-thread matmul of 80 rows took as long as one of 800 (bench/README.md).
// With one parallel loop there is a single barrier per call and threads never wait on each
// other's small GEMMs.
//
// Items: rows mode cuts each group into row blocks of R rows (the last block of a group takes
// the remainder), R about N / (4 threads) rounded up to 16 (at least 64), so blocks are large
// enough for the kernel and the number of distinct block shapes (hence cached primitives) stays
// at R plus one remainder per group. weight_grad cuts the output rows (K of c_g) into blocks,
// each a strided GEMM over the group's n_g rows (lda = ldc = row length).
#include "foundry/backend/cpu/grouped_gemm.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "foundry/backend/cpu/gemm.h"
#include "foundry/core/threads.h"

namespace foundry::cpu {
namespace {

// A view of `rows` rows of `cols` elements starting at element `offset` of t's data.
TensorView at(const TensorView& t, int64_t offset, int64_t rows, int64_t cols) {
  return {static_cast<char*>(t.data) + offset * dtype_size(t.dtype), t.dtype, Shape{rows, cols},
          t.device};
}

constexpr double kParallelFlops = 1 << 24;  // below this, one thread does every item

struct Item {
  int64_t group, off, begin, end;  // group, its first row in a, and the block [begin, end)
  double flops;
};

}  // namespace

void grouped_gemm(const GroupedGemmArgs& g) {
  const int64_t E = g.group_sizes.size(0), N = g.a.size(0);
  const int64_t* sizes = g.group_sizes.ptr<int64_t>();
  const int nt = num_threads();

  std::vector<Item> items;
  int64_t off = 0;
  if (!g.weight_grad) {
    const int64_t R = std::max<int64_t>(64, ((N + 4 * nt - 1) / (4 * nt) + 15) / 16 * 16);
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t r = 0; r < sizes[e]; r += R)
        items.push_back({e, off, r, std::min(sizes[e], r + R),
                         static_cast<double>(std::min(sizes[e], r + R) - r)});
      off += sizes[e];
    }
  } else {
    // c (E, Kc, Nc): blocks of output rows; a group's work is n_g * rows of the block.
    const int64_t Kc = g.c.size(1);
    const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(Kc / 64, 2 * nt));
    const int64_t B = (Kc + blocks - 1) / blocks;
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t r = 0; r < Kc; r += B)
        items.push_back({e, off, r, std::min(Kc, r + B),
                         static_cast<double>(std::max<int64_t>(sizes[e], 1) * (std::min(Kc, r + B) - r))});
      off += sizes[e];
    }
  }
  // Largest first: with a dynamic schedule the small items fill in at the end.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.flops > y.flops; });

  auto run = [&](const Item& it) {
    const int64_t n = sizes[it.group];
    if (!g.weight_grad) {
      const int64_t K = g.a.size(1), Nout = g.c.size(1), rows = it.end - it.begin;
      const int64_t first = it.off + it.begin;
      gemm({.a = at(g.a, first * K, rows, K), .b = at(g.b, it.group * Nout * K,
                                                        g.trans_b ? Nout : K, g.trans_b ? K : Nout),
            .c = at(g.c, first * Nout, rows, Nout), .trans_b = g.trans_b, .beta = g.beta});
    } else {
      // c_g[begin:end] (rows, Nc) = a_g[:, begin:end]^T (rows, n) @ b_g (n, Nc) + beta c_g[...]
      const int64_t Kc = g.c.size(1), Nc = g.c.size(2), rows = it.end - it.begin;
      gemm({.a = at(g.a, it.off * Kc + it.begin, n, rows), .b = at(g.b, it.off * Nc, n, Nc),
            .c = at(g.c, (it.group * Kc + it.begin) * Nc, rows, Nc), .trans_a = true,
            .beta = g.beta, .lda = Kc});
    }
  };

  // Small calls: a parallel region costs more than it saves (on a loaded machine a thread
  // that is not scheduled holds the barrier for a time slice).
  double flops = 0;
  for (const Item& it : items) flops += it.flops;
  flops *= 2.0 * static_cast<double>(g.weight_grad ? g.c.size(2) : g.a.size(1) * g.c.size(1));
  const int64_t count = static_cast<int64_t>(items.size());
  if (nt == 1 || count <= 1 || flops < kParallelFlops) {
    for (const Item& it : items) run(it);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    omp_set_num_threads(1);  // this implicit task only: each item runs single-threaded
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) run(items[static_cast<size_t>(i)]);
  }
}

}  // namespace foundry::cpu
