// CPU grouped GEMM: the groups are cut into work items that one OpenMP loop spreads over the
// threads (dynamic schedule, largest items first); each item is one single-threaded oneDNN
// matmul (primitive cached by shape; pointers into a, b and c: no copies). Calls under
// kParallelFlops run the items one after another through cpu::gemm instead.
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
//
// The parallel items do not go through cpu::gemm: Debian's oneDNN is built with
// DNNL_ENABLE_CONCURRENT_EXEC, so a primitive owns one scratchpad and two threads executing the
// same cached primitive at once (two blocks of the same shape) race on it (brgemm packs B
// there). Items use this file's own single-threaded primitives with a user-managed scratchpad,
// one buffer per thread.
#include "foundry/backend/cpu/grouped_gemm.h"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <memory>
#include <mutex>
#include <unordered_map>
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

using dnnl::memory;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// (M, N, K, lda, ldb, ldc, trans_a, trans_b, dtype, beta bits)
using Key = std::array<int64_t, 10>;
struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t v : k) h = (h ^ static_cast<uint64_t>(v)) * 0x100000001b3ull;
    return static_cast<size_t>(h);
  }
};

struct Prim {
  dnnl::matmul prim;
  memory::desc a_md, b_md, c_md;
  size_t scratch_bytes = 0;
};

// Single-threaded matmul primitives with a user scratchpad, built on first use (inside the
// parallel region, where omp_get_max_threads() is 1). Bounded: cleared past kCapacity entries.
class PrimCache {
 public:
  static constexpr size_t kCapacity = 1024;
  std::shared_ptr<const Prim> get(const Key& k) {
    {
      std::lock_guard lock(mu_);
      if (auto it = map_.find(k); it != map_.end()) return it->second;
    }
    auto p = build(k);  // outside the lock: other threads keep running their items
    std::lock_guard lock(mu_);
    if (map_.size() >= kCapacity) map_.clear();
    return map_.emplace(k, p).first->second;
  }

 private:
  static std::shared_ptr<const Prim> build(const Key& k) {
    const auto [M, N, K, lda, ldb, ldc, ta, tb, dt, beta_bits] = k;
    const auto in_dt = static_cast<DType>(dt) == DType::bf16 ? memory::data_type::bf16
                                                             : memory::data_type::f32;
    auto p = std::make_shared<Prim>();
    p->a_md = memory::desc({M, K}, in_dt, ta ? memory::dims{1, lda} : memory::dims{lda, 1});
    p->b_md = memory::desc({K, N}, in_dt, tb ? memory::dims{1, ldb} : memory::dims{ldb, 1});
    p->c_md = memory::desc({M, N}, memory::data_type::f32, memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const float beta = std::bit_cast<float>(static_cast<uint32_t>(beta_bits));
    if (beta != 0.f) {
      dnnl::post_ops po;
      po.append_sum(beta);
      attr.set_post_ops(po);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p->a_md, p->b_md, p->c_md), attr,
                                          engine());
    p->scratch_bytes = pd.scratchpad_desc().get_size();
    p->prim = dnnl::matmul(pd);
    return p;
  }

  std::mutex mu_;
  std::unordered_map<Key, std::shared_ptr<const Prim>, KeyHash> map_;
};

PrimCache& prim_cache() {
  static PrimCache c;
  return c;
}

// c (M, N) = op(a) op(b) + beta c on the calling thread only (a, b, c: data pointers with row
// strides lda, ldb, ldc of the stored matrices). K == 0 scales c.
void matmul_1t(const void* a, const void* b, float* c, int64_t M, int64_t N, int64_t K,
               int64_t lda, int64_t ldb, int64_t ldc, bool ta, bool tb, DType dt, float beta) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) c[m * ldc + n] = beta == 0.f ? 0.f : beta * c[m * ldc + n];
    return;
  }
  const Key key{M, N, K, lda, ldb, ldc, ta, tb, static_cast<int64_t>(dt),
                std::bit_cast<uint32_t>(beta)};
  const auto p = prim_cache().get(key);
  thread_local std::vector<char> scratch;
  thread_local dnnl::stream strm(engine());
  if (scratch.size() < p->scratch_bytes) scratch.resize(p->scratch_bytes);
  memory ma(p->a_md, engine(), const_cast<void*>(a)), mb(p->b_md, engine(), const_cast<void*>(b));
  memory mc(p->c_md, engine(), c);
  memory ms(memory::desc({static_cast<int64_t>(p->scratch_bytes)}, memory::data_type::u8,
                         memory::format_tag::a),
            engine(), scratch.data());
  p->prim.execute(strm, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc},
                         {DNNL_ARG_SCRATCHPAD, ms}});
  strm.wait();
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

  // Serial: multi-threaded oneDNN through cpu::gemm.
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
  // Parallel: the same GEMM on the calling thread only.
  const int64_t es = dtype_size(g.a.dtype);
  const char* A = static_cast<const char*>(g.a.data);
  const char* Bm = static_cast<const char*>(g.b.data);
  float* C = static_cast<float*>(g.c.data);
  auto run_1t = [&](const Item& it) {
    const int64_t n = sizes[it.group], rows = it.end - it.begin;
    if (!g.weight_grad) {
      const int64_t K = g.a.size(1), Nout = g.c.size(1), first = it.off + it.begin;
      matmul_1t(A + first * K * es, Bm + it.group * Nout * K * es, C + first * Nout, rows, Nout, K,
                K, g.trans_b ? K : Nout, Nout, false, g.trans_b, g.a.dtype, g.beta);
    } else {
      const int64_t Kc = g.c.size(1), Nc = g.c.size(2);
      matmul_1t(A + (it.off * Kc + it.begin) * es, Bm + it.off * Nc * es,
                C + (it.group * Kc + it.begin) * Nc, rows, Nc, n, Kc, Nc, Nc, true, false,
                g.a.dtype, g.beta);
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
    for (int64_t i = 0; i < count; ++i) run_1t(items[static_cast<size_t>(i)]);
  }
}

}  // namespace foundry::cpu
