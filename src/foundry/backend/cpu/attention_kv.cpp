// CPU attention with a key/value cache (decoding), the contract of ops/attention.h
// (AttentionKvArgs; FlashAttention's flash_attn_with_kvcache).
//
// 1. Append: k_new[b, i] and v_new[b, i] are copied to cache position past_len + i.
// 2. Per (batch row b, query head h, new token i), with n = past_len + i + 1 visible keys and
//    kv head h / G:
//      s_j = (scale q) . K[b, j]                     j < n   (one dot product over HD per key)
//      m = max_j s_j,  p_j = exp(s_j - m),  l = sum_j p_j
//      out = (sum_j p_j V[b, j]) / l
//    A query row sees at most Smax keys, so its scores fit in a per-thread buffer of Smax floats
//    and the softmax is exact two-pass (no online rescaling as in the blocked training kernel,
//    backend/cpu/attention.cpp, whose tiles would be mostly empty with one query per head).
//    The dot products, the exp (vector_math.h's exp_f32) and the value sums are `omp simd`
//    loops; (b, h, i) rows are spread over OpenMP threads when the call is big enough to pay
//    for a parallel region.
#include "foundry/backend/cpu/attention_kv.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "foundry/backend/cpu/vector_math.h"

namespace foundry::cpu {

namespace {

// Below this many flops a call runs on one thread (a parallel region costs microseconds, more
// when the cores are shared; one decode step of a small model is a few microseconds of work).
constexpr double kMinParallelFlops = 1e6;

struct Dims {
  int64_t B, Tq, NH, HD, NKV, G, Smax, past;
  float scale;
};

// One query row q (HD) against n keys/values (row stride ks in k and v): writes out (HD).
// s: n floats of scratch, acc: HD floats of scratch.
void attend_row(const float* q, const float* k, const float* v, int64_t ks, int64_t n, int64_t HD,
                float scale, float* s, float* acc, float* out) {
  for (int64_t c = 0; c < HD; ++c) acc[c] = scale * q[c];  // scaled query
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = k + j * ks;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < HD; ++c) dot += acc[c] * kj[c];
    s[j] = dot;
    mx = std::max(mx, dot);
  }
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    const float p = exp_f32(s[j] - mx);
    s[j] = p;
    sum += p;
  }
  std::fill(acc, acc + HD, 0.f);
  for (int64_t j = 0; j < n; ++j) {
    const float p = s[j];
    const float* vj = v + j * ks;
#pragma omp simd
    for (int64_t c = 0; c < HD; ++c) acc[c] += p * vj[c];
  }
  const float inv = 1.f / sum;
#pragma omp simd
  for (int64_t c = 0; c < HD; ++c) out[c] = acc[c] * inv;
}

void append(const Dims& d, const AttentionKvArgs& a, bool parallel) {
  const int64_t row = d.NKV * d.HD;  // floats per (b, position)
  const float *kn = a.k_new.ptr<float>(), *vn = a.v_new.ptr<float>();
  float *kc = a.k_cache.ptr<float>(), *vc = a.v_cache.ptr<float>();
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t bi = 0; bi < d.B * d.Tq; ++bi) {
    const int64_t b = bi / d.Tq, i = bi % d.Tq;
    const int64_t dst = (b * d.Smax + d.past + i) * row;
    std::copy(kn + bi * row, kn + (bi + 1) * row, kc + dst);
    std::copy(vn + bi * row, vn + (bi + 1) * row, vc + dst);
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
  d.scale = a.scale != 0.f ? a.scale : 1.f / std::sqrt(static_cast<float>(d.HD));

  // Keys visited over all rows: B NH sum_i (past + i + 1); 4 flops per key and head dim.
  const double keys = static_cast<double>(d.B * d.NH) *
                      (static_cast<double>(d.Tq) * static_cast<double>(d.past) +
                       0.5 * static_cast<double>(d.Tq) * static_cast<double>(d.Tq + 1));
  const bool parallel = 4.0 * keys * static_cast<double>(d.HD) > kMinParallelFlops;
  if (a.k_new.defined()) append(d, a, parallel);

  const float* q = a.q.ptr<float>();
  const float *kc = a.k_cache.ptr<float>(), *vc = a.v_cache.ptr<float>();
  float* out = a.out.ptr<float>();
  const int64_t ks = d.NKV * d.HD;  // cache row stride (floats per position)
  const int64_t rows = d.B * d.Tq * d.NH;
#pragma omp parallel if (parallel)
  {
    std::vector<float> s(static_cast<size_t>(d.past + d.Tq)), acc(static_cast<size_t>(d.HD));
    // Rows are ordered (b, i, h) like q and out; later tokens see more keys, hence dynamic.
#pragma omp for schedule(dynamic, 4)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t h = r % d.NH, bi = r / d.NH, b = bi / d.Tq, i = bi % d.Tq;
      const int64_t kv0 = b * d.Smax * ks + (h / d.G) * d.HD;  // (b, position 0, kv head)
      attend_row(q + r * d.HD, kc + kv0, vc + kv0, ks, d.past + i + 1, d.HD, d.scale, s.data(),
                 acc.data(), out + r * d.HD);
    }
  }
}

}  // namespace foundry::cpu
