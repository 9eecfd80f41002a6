// CPU GEMM through the oneDNN 2.6 matmul primitive (v2 API: matmul::desc + primitive_desc).
// c = alpha * op(a) @ op(b) + beta * c; see foundry/ops/gemm.h for the contract and
// backend/cpu/gemm.h for how transposes, leading dimensions, alpha and beta map onto oneDNN.
#include "foundry/backend/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "foundry/core/threads.h"

namespace foundry::cpu {
namespace {

using dnnl::memory;

// One engine for the process, one stream per calling thread (oneDNN streams are not thread-safe:
// concurrent callers sharing one gave wrong products now and then).
dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

// The geometry of one call, in elements. Logical matrices: a (M, K), b (K, N), c (M, N), each
// with strides (batch, row, column); a transpose swaps the row and column strides of the stored
// (untransposed) matrix, and batch t starts at data + t * stored_rows * ld (ops/gemm.h).
struct Geometry {
  bool batched = false;
  int64_t batch = 1, M = 0, N = 0, K = 0;
  std::array<int64_t, 3> sa{}, sb{}, sc{};
  int64_t ldc = 0;
};

Geometry geometry(const GemmArgs& g) {
  Geometry q;
  q.batched = g.c.ndim() == 3;
  q.batch = q.batched ? g.c.size(0) : 1;
  q.M = g.c.size(-2);
  q.N = g.c.size(-1);
  q.K = g.trans_a ? g.a.size(-2) : g.a.size(-1);
  const int64_t lda = g.lda ? g.lda : g.a.size(-1);
  const int64_t ldb = g.ldb ? g.ldb : g.b.size(-1);
  q.ldc = g.ldc ? g.ldc : q.N;
  q.sa = {g.a.size(-2) * lda, g.trans_a ? 1 : lda, g.trans_a ? lda : 1};
  q.sb = {g.b.size(-2) * ldb, g.trans_b ? 1 : ldb, g.trans_b ? ldb : 1};
  q.sc = {q.M * q.ldc, q.ldc, 1};
  return q;
}

memory::desc matrix_desc(const Geometry& q, int64_t rows, int64_t cols,
                         const std::array<int64_t, 3>& s, memory::data_type dt) {
  if (q.batched) return memory::desc({q.batch, rows, cols}, dt, {s[0], s[1], s[2]});
  return memory::desc({rows, cols}, dt, {s[1], s[2]});
}

// ---- primitive cache ------------------------------------------------------------------------

// (batched, batch, M, N, K, 9 strides, dtype, alpha bits, beta bits, threads)
using Key = std::array<int64_t, 18>;

struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the 18 words
    for (int64_t v : k) h = (h ^ static_cast<uint64_t>(v)) * 0x100000001b3ull;
    return static_cast<size_t>(h);
  }
};

// A built primitive, plus a pool of memory objects (a, b, c) for it: creating three dnnl::memory
// per call costs several allocations, which shows on small GEMMs, so each call borrows a set and
// only swaps the data pointers. The pool holds at most one set per concurrent caller.
struct Entry {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  memory::desc a_md, b_md, c_md;

  using Memories = std::array<memory, 3>;
  Memories borrow() const {
    {
      std::lock_guard lock(pool_mu);
      if (!pool.empty()) {
        Memories m = std::move(pool.back());
        pool.pop_back();
        return m;
      }
    }
    return {memory(a_md, engine(), nullptr), memory(b_md, engine(), nullptr),
            memory(c_md, engine(), nullptr)};
  }
  void give_back(Memories m) const {
    std::lock_guard lock(pool_mu);
    pool.push_back(std::move(m));
  }

  mutable std::mutex pool_mu;
  mutable std::vector<Memories> pool;
  mutable std::mutex exec_mu;
};

// LRU of built primitives. 1024 entries (oneDNN's own primitive-cache default) covers every GEMM
// shape of a training step many times over; the least recently used entry goes first.
class Cache {
 public:
  static constexpr size_t kCapacity = 1024;

  std::shared_ptr<const Entry> get(const Key& key, const GemmArgs& g, const Geometry& q) {
    std::lock_guard lock(mu_);
    if (auto it = map_.find(key); it != map_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
    ++misses_;
    auto entry = build(g, q);
    lru_.emplace_front(key, entry);
    map_[key] = lru_.begin();
    if (lru_.size() > kCapacity) {
      map_.erase(lru_.back().first);
      lru_.pop_back();
    }
    return entry;
  }

  GemmCacheStats stats() {
    std::lock_guard lock(mu_);
    return {hits_, misses_, static_cast<int64_t>(lru_.size())};
  }

  void clear() {
    std::lock_guard lock(mu_);
    map_.clear();
    lru_.clear();
    hits_ = misses_ = 0;
  }

 private:
  static std::shared_ptr<const Entry> build(const GemmArgs& g, const Geometry& q) {
    const auto in_dt = g.a.dtype == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    auto e = std::make_shared<Entry>();
    e->a_md = matrix_desc(q, q.M, q.K, q.sa, in_dt);
    e->b_md = matrix_desc(q, q.K, q.N, q.sb, in_dt);
    e->c_md = matrix_desc(q, q.M, q.N, q.sc, memory::data_type::f32);
    dnnl::primitive_attr attr;
    if (g.alpha != 1.f) attr.set_output_scales(0, {g.alpha});  // acc * alpha
    if (g.beta != 0.f) {                                       // + beta * dst (read before write)
      dnnl::post_ops po;
      po.append_sum(g.beta);
      attr.set_post_ops(po);
    }
    e->pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(e->a_md, e->b_md, e->c_md), attr,
                                         engine());
    e->prim = dnnl::matmul(e->pd);
    return e;
  }

  std::mutex mu_;
  std::list<std::pair<Key, std::shared_ptr<const Entry>>> lru_;
  std::unordered_map<Key, decltype(lru_)::iterator, KeyHash> map_;
  int64_t hits_ = 0, misses_ = 0;
};

Cache& cache() {
  static Cache c;
  return c;
}

std::shared_ptr<const Entry> lookup(const GemmArgs& g, const Geometry& q) {
  const Key key{q.batched, q.batch, q.M, q.N, q.K,
                q.sa[0], q.sa[1], q.sa[2], q.sb[0], q.sb[1], q.sb[2], q.sc[0], q.sc[1], q.sc[2],
                static_cast<int64_t>(g.a.dtype), std::bit_cast<uint32_t>(g.alpha),
                std::bit_cast<uint32_t>(g.beta), num_threads()};
  return cache().get(key, g, q);
}

// K == 0: the product is empty, so c = beta * c (beta == 0 writes zeros without reading c).
void scale_c(const GemmArgs& g, const Geometry& q) {
  float* c = static_cast<float*>(g.c.data);
  const int64_t rows = q.batch * q.M;
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    float* row = c + r * q.ldc;
    if (g.beta == 0.f) std::fill(row, row + q.N, 0.f);
    else for (int64_t n = 0; n < q.N; ++n) row[n] *= g.beta;
  }
}

}  // namespace

void gemm(const GemmArgs& g) {
  const Geometry q = geometry(g);
  if (q.batch == 0 || q.M == 0 || q.N == 0) return;
  if (q.K == 0) return scale_c(g, q);
  const auto e = lookup(g, q);
  Entry::Memories m = e->borrow();
  m[0].set_data_handle(g.a.data);
  m[1].set_data_handle(g.b.data);
  m[2].set_data_handle(g.c.data);
  {
    // One call at a time per primitive: Debian's oneDNN keeps a primitive's library-managed
    // scratchpad with the primitive (no concurrent-execution build), so two threads running it at
    // once overwrite each other's packing buffers (tests/ops/gemm_test.cpp ConcurrentCallers...).
    std::lock_guard lock(e->exec_mu);
    e->prim.execute(stream(), {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}});
    stream().wait();
  }
  e->give_back(std::move(m));
}

GemmCacheStats gemm_cache_stats() { return cache().stats(); }
int64_t gemm_cache_size() { return cache().stats().size; }
void gemm_cache_clear() { cache().clear(); }

std::string gemm_impl_name(const GemmArgs& g) {
  const Geometry q = geometry(g);
  if (q.batch == 0 || q.M == 0 || q.N == 0 || q.K == 0) return "none";
  return lookup(g, q)->pd.impl_info_str();
}

double measure_peak_gflops(DType dtype, double seconds) {
  FOUNDRY_CHECK(dtype == DType::f32 || dtype == DType::bf16,
                "measure_peak_gflops: dtype {} not supported (f32 or bf16)", dtype_name(dtype));
  // a (M, K) @ b (K, N) -> c (M, N), all dense, straight to oneDNN.
  constexpr int64_t M = 2048, K = 512, N = 2048;
  const auto in_dt = dtype == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  const Tensor a = Tensor::full({M, K}, 0.01f, dtype);
  const Tensor b = Tensor::full({K, N}, 0.01f, dtype);
  const Tensor c = Tensor::zeros({M, N});
  const memory::desc a_md({M, K}, in_dt, memory::format_tag::ab);
  const memory::desc b_md({K, N}, in_dt, memory::format_tag::ab);
  const memory::desc c_md({M, N}, memory::data_type::f32, memory::format_tag::ab);
  const dnnl::matmul prim(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), engine()));
  memory ma(a_md, engine(), a.data()), mb(b_md, engine(), b.data()), mc(c_md, engine(), c.data());
  auto run = [&] {
    prim.execute(stream(), {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    stream().wait();
  };
  using clock = std::chrono::steady_clock;
  run();  // warm-up: JIT, caches, OpenMP team
  double best = 1e30, total = 0;
  for (int i = 0; i < 3 || total < seconds; ++i) {
    const auto t0 = clock::now();
    run();
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::min(best, dt);
    total += dt;
  }
  return 2.0 * M * N * K / best * 1e-9;
}

}  // namespace foundry::cpu
