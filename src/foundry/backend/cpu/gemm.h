// CPU GEMM: c = alpha * op(a) @ op(b) + beta * c through the oneDNN 2.6 matmul primitive.
//
// Transposes, leading dimensions and batch strides are expressed as memory-descriptor strides
// (no copies). alpha is the primitive's output scale and beta a sum post-op, so the primitive
// computes dst = alpha * acc + beta * dst in one pass (oneDNN "Primitive Attributes: Post-ops").
// bf16 inputs accumulate in f32 and write f32.
//
// Primitives are cached (thread-safe LRU) by (batch, M, N, K, strides, dtype, alpha, beta,
// threads): building a matmul primitive costs tens of microseconds, so without the cache small
// GEMMs would be dominated by set-up. One engine and one stream serve the whole process; oneDNN
// runs multi-threaded with OpenMP (Debian's libdnnl uses the OpenMP runtime) using
// foundry::num_threads() threads.
//
// Not for concurrent callers: Debian's oneDNN is built with one scratchpad per primitive, so two
// threads running the same cached primitive at once corrupt each other's results. Code that
// needs GEMMs inside its own parallel loop builds private single-threaded primitives (see
// backend/cpu/grouped_gemm.cpp) or uses its own kernels (attention).
#pragma once

#include <cstdint>
#include <string>

#include "foundry/ops/gemm.h"

namespace foundry::cpu {

// Arguments already validated by foundry::gemm (ops/gemm.cpp).
void gemm(const GemmArgs& args);

// Cache counters (hits and misses since the last clear; size = primitives held now).
struct GemmCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t size = 0;
};
GemmCacheStats gemm_cache_stats();
int64_t gemm_cache_size();
void gemm_cache_clear();  // drops every cached primitive and zeroes the counters

// The oneDNN implementation the matmul for these (validated) args runs, e.g.
// "brg:avx512_core_bf16" or "gemm:jit"; for tests and benchmarks (a "ref" kernel is a bug).
std::string gemm_impl_name(const GemmArgs& args);

// Times the oneDNN matmul directly (no foundry layer) on M=2048, K=512, N=2048 for about
// `seconds` and returns the best observed GFLOP/s: the measured peak that MFU is reported
// against. dtype is the input type: f32 (f32 x f32 -> f32) or bf16 (bf16 x bf16 -> f32).
double measure_peak_gflops(DType dtype, double seconds);

}  // namespace foundry::cpu
