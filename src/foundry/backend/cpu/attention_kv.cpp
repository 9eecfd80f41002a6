// CPU attention with a key/value cache (decoding), the contract of ops/attention.h
// (AttentionKvArgs; FlashAttention's flash_attn_with_kvcache).
//
// 1. Append: k_new[b, i] and v_new[b, i] are copied to cache position past_len + i.
// 2. Prefill of an empty cache (past_len = 0): the new tokens are B equal-length causal
//    sequences, exactly the training kernel's input (backend/cpu/attention.cpp, FlashAttention-2
//    tiles), so it runs that: 10-20x faster than row by row on long prompts, and bitwise equal
//    to the training forward.
// 3. Otherwise (decode, chunked prefill), per (batch row b, kv head, new token i): the G query
//    heads of the group against the n = past_len + i + 1 visible keys, so each cached key and
//    value is read once for the G heads that share it:
//      s_gj = (scale q_g) . K[b, j]            j < n
//      m_g = max_j s_gj,  p_gj = exp(s_gj - m_g),  l_g = sum_j p_gj
//      out_g = (sum_j p_gj V[b, j]) / l_g
//    A row sees at most Smax keys, so its G x n scores fit in a per-thread buffer and the
//    softmax is exact two-pass (no online rescaling). Scores come 16 keys at a time from 16
//    AVX-512 accumulators reduced together by a transposing tree (15 adds and 31 shuffles for
//    16 dot products instead of a 4-step horizontal sum each); the exp (vector_math.h's
//    exp_f32) and the value sums are `omp simd` loops. Items go to OpenMP threads when the call
//    is big enough to pay for a parallel region.
#include "foundry/backend/cpu/attention_kv.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "foundry/backend/cpu/attention.h"
#include "foundry/backend/cpu/vector_math.h"

// GCC 12 reports its own _mm512_undefined_ps() inside the AVX-512 intrinsics as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace foundry::cpu {

namespace {

// Below this many flops a call runs on one thread (a parallel region costs microseconds, more
// when the cores are shared; one decode step of a small model is a few microseconds of work).
constexpr double kMinParallelFlops = 1e6;

struct Dims {
  int64_t B, Tq, NH, HD, NKV, G, Smax, past;
  int64_t ks;  // cache row stride (floats per position): NKV * HD
  float scale;
};

#if defined(__AVX512F__)
// r[k] = sum of the 16 lanes of a[k], k < 16 (pairwise tree; see the file header).
inline __m512 reduce16(__m512 a[16]) {
  __m512 b[8], c[4], d[2];
  for (int k = 0; k < 8; ++k)  // quarters: [a_2k (q0+q2), a_2k (q1+q3), a_2k+1 (..), a_2k+1 (..)]
    b[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1], 0xEE));
  for (int k = 0; k < 4; ++k)  // quarter i of c[k]: 4 partial sums of key 4k + i
    c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], 0xDD));
  for (int k = 0; k < 2; ++k)  // lane i of d[k]: 2 partials of key 8k + i, 2 of key 8k + 4 + i
    d[k] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * k], c[2 * k + 1], 0x44),
                         _mm512_shuffle_ps(c[2 * k], c[2 * k + 1], 0xEE));
  // Element 4i + m holds key i + 4m; permute to key order.
  const __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xDD));
  const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  return _mm512_permutexvar_ps(order, e);
}
#endif

// s[j] = q . k_j for the 16 keys k0 .. k0 + 15 (rows of stride ks; keys at or past n repeat
// key n - 1, so nothing past the valid rows is read; their scores are written but unused).
inline void scores16(const float* q, const float* k, int64_t ks, int64_t k0, int64_t n, int64_t HD,
                     float* s) {
#if defined(__AVX512F__)
  __m512 acc[16];
  const float* row[16];
  for (int kk = 0; kk < 16; ++kk) {
    acc[kk] = _mm512_setzero_ps();
    row[kk] = k + std::min(k0 + kk, n - 1) * ks;
  }
  // The block is read across its rows (16 streams 2 KB+ apart), which the hardware prefetcher
  // follows poorly once the cache is out of L2: fetch the next block's rows ahead.
  if (k0 + 16 < n)
    for (int kk = 0; kk < 16; ++kk)
      for (int64_t c = 0; c < HD; c += 16)
        _mm_prefetch(reinterpret_cast<const char*>(row[kk] + 16 * ks + c), _MM_HINT_T0);
  for (int64_t c = 0; c < HD; c += 16) {
    const __mmask16 m = HD - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (HD - c)) - 1u);
    const __m512 qv = _mm512_maskz_loadu_ps(m, q + c);
#pragma GCC unroll 16
    for (int kk = 0; kk < 16; ++kk)
      acc[kk] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, row[kk] + c), acc[kk]);
  }
  _mm512_storeu_ps(s, reduce16(acc));
#else
  for (int64_t kk = 0; kk < 16; ++kk) {
    const float* kj = k + std::min(k0 + kk, n - 1) * ks;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < HD; ++c) dot += q[c] * kj[c];
    s[kk] = dot;
  }
#endif
}

struct Scratch {
  explicit Scratch(const Dims& d)
      : q(static_cast<size_t>(d.G * d.HD)),
        s(static_cast<size_t>(d.G * (d.past + d.Tq + 16))),
        acc(static_cast<size_t>(d.G * d.HD)) {}
  std::vector<float> q, s, acc;  // scaled queries (G, HD), scores (G, n + 16), sums (G, HD)
};

// The G query heads of kv head kvh for token i of batch row b.
void attend_group(const Dims& d, const float* q, const float* kc, const float* vc, float* out,
                  int64_t b, int64_t i, int64_t kvh, Scratch& w) {
  const int64_t HD = d.HD, G = d.G, n = d.past + i + 1, sn = n + 16;  // sn: score row stride
  const int64_t q0 = ((b * d.Tq + i) * d.NH + kvh * G) * HD;        // (b, i, first head of group)
  const int64_t kv0 = b * d.Smax * d.ks + kvh * HD;                 // (b, position 0, kv head)
  const float *k = kc + kv0, *v = vc + kv0;
  for (int64_t e = 0; e < G * HD; ++e) w.q[static_cast<size_t>(e)] = d.scale * q[q0 + e];
  for (int64_t k0 = 0; k0 < n; k0 += 16)  // the 16-key block stays in L1 across the G heads
    for (int64_t g = 0; g < G; ++g) scores16(w.q.data() + g * HD, k, d.ks, k0, n, HD, w.s.data() + g * sn + k0);
  for (int64_t g = 0; g < G; ++g) {
    float* s = w.s.data() + g * sn;
    float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[j]);
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) {
      const float p = exp_f32(s[j] - mx);
      s[j] = p;
      sum += p;
    }
    s[n] = 1.f / sum;  // stash 1 / l_g past the row's scores
  }
  std::fill(w.acc.begin(), w.acc.end(), 0.f);
  for (int64_t j = 0; j < n; ++j) {
    const float* vj = v + j * d.ks;
    for (int64_t g = 0; g < G; ++g) {
      const float p = w.s[static_cast<size_t>(g * sn + j)];
      float* acc = w.acc.data() + g * HD;
#pragma omp simd
      for (int64_t c = 0; c < HD; ++c) acc[c] += p * vj[c];
    }
  }
  for (int64_t g = 0; g < G; ++g) {
    const float inv = w.s[static_cast<size_t>(g * sn + n)];
    const float* acc = w.acc.data() + g * HD;
    float* o = out + q0 + g * HD;
#pragma omp simd
    for (int64_t c = 0; c < HD; ++c) o[c] = acc[c] * inv;
  }
}

void append(const Dims& d, const AttentionKvArgs& a, bool parallel) {
  const float *kn = a.k_new.ptr<float>(), *vn = a.v_new.ptr<float>();
  float *kc = a.k_cache.ptr<float>(), *vc = a.v_cache.ptr<float>();
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t bi = 0; bi < d.B * d.Tq; ++bi) {
    const int64_t b = bi / d.Tq, i = bi % d.Tq;
    const int64_t dst = (b * d.Smax + d.past + i) * d.ks;
    std::copy(kn + bi * d.ks, kn + (bi + 1) * d.ks, kc + dst);
    std::copy(vn + bi * d.ks, vn + (bi + 1) * d.ks, vc + dst);
  }
}

}  // namespace

void attention_kv_forward(const AttentionKvArgs& a) {
  Dims d;
  d.B = a.q.size(0);
  d.Tq = a.q.size(1);
  d.NH = a.q.size(2);
  d.HD = a.q.size(3);
  d.Smax = a.k_cache.size(1);
  d.NKV = a.k_cache.size(2);
  d.G = d.NH / d.NKV;
  d.past = a.past_len;
  d.ks = d.NKV * d.HD;
  d.scale = a.scale != 0.f ? a.scale : 1.f / std::sqrt(static_cast<float>(d.HD));

  if (d.past == 0 && d.Tq > 1 && a.k_new.defined()) {  // prefill: the training kernel's tiles
    const int64_t T = d.B * d.Tq;
    Tensor lse = Tensor::empty({T, d.NH});  // required by the kernel, unused here
    const AttentionArgs tiled{.q = a.q.reshape({T, d.NH, d.HD}),
                              .k = a.k_new.reshape({T, d.NKV, d.HD}),
                              .v = a.v_new.reshape({T, d.NKV, d.HD}), .batch = d.B, .causal = true,
                              .scale = a.scale, .out = a.out.reshape({T, d.NH, d.HD}), .lse = lse};
    cpu::attention_forward(tiled);
    append(d, a, static_cast<double>(T * d.ks) > 1e6);
    return;
  }

  // Keys visited over all rows: B NH sum_i (past + i + 1); 4 flops per key and head dim.
  const double keys = static_cast<double>(d.B * d.NH) *
                      (static_cast<double>(d.Tq) * static_cast<double>(d.past) +
                       0.5 * static_cast<double>(d.Tq) * static_cast<double>(d.Tq + 1));
  const bool parallel = 4.0 * keys * static_cast<double>(d.HD) > kMinParallelFlops;
  if (a.k_new.defined()) append(d, a, parallel);

  const float* q = a.q.ptr<float>();
  const float *kc = a.k_cache.ptr<float>(), *vc = a.v_cache.ptr<float>();
  float* out = a.out.ptr<float>();
  const int64_t items = d.B * d.Tq * d.NKV;
#pragma omp parallel if (parallel)
  {
    Scratch w(d);
    // Items ordered (b, i, kv head); later tokens see more keys, hence dynamic.
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t kvh = it % d.NKV, bi = it / d.NKV;
      attend_group(d, q, kc, vc, out, bi / d.Tq, bi % d.Tq, kvh, w);
    }
  }
}

}  // namespace foundry::cpu
