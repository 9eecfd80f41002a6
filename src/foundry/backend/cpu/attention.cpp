// CPU attention, FlashAttention-2 (Dao 2023, "FlashAttention-2: Faster Attention with Better
// Parallelism and Work Partitioning", Algorithms 1 and 2), for packed sequences with GQA.
//
// Scores are kept in log2 units: s = scale * log2(e) * q.k, so every exponential is an exp2.
// Forward, per (sequence, head, block of kBr queries), over blocks of kBc keys:
//   S^T = K_j Q_i^T                  (kBc x kBr; keys are rows, so the softmax statistics of a
//                                     query are plain vector ops down a column)
//   m' = max(m, colmax S^T),  P^T = 2^(S^T - m'),  l = 2^(m - m') l + colsum P^T
//   O = 2^(m - m') O + P V_j
//   out = O / l,  lse = ln 2 (m + log2 l)          (natural-log lse, as the contract says)
// Backward, per (sequence, kv head, block of kBc keys), over the query heads of the group and
// the query blocks (causal: only those at or after the key block):
//   P^T = 2^(S^T - lse log2 e),  dV_j += P^T dO_i,  dP^T = V_j dO_i^T,
//   dS^T = scale P^T (dP^T - D_i) with D = rowsum(dO * out),
//   dK_j += dS^T Q_i,  dQ_i += (dS^T)^T K_j
// dK/dV of a key block are owned by one work item, so they need no reduction. dQ_i gets
// contributions from every key block: when there are enough (sequence, kv head) groups each
// group is one work item (it owns its dQ rows); otherwise items are (group, key block) and each
// thread accumulates dQ in a private buffer, summed at the end.
// The S x S matrix is never formed: the largest buffers are per-block (kBc x kBr) tiles, plus, in
// backward, Q and dO repacked transposed per block (the size of q).
#include "foundry/backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "foundry/backend/cpu/attention_kernels.h"

// GCC 12 reports its own _mm512_undefined_ps() inside the AVX-512 intrinsics as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace foundry::cpu {

namespace {

using attn::small_gemm;

// Block sizes: S^T tiles of 64 x 64 f32 (16 KiB) stay in L1 next to the 64-row panels of K/V;
// 48..128 measured within noise of each other on this machine.
constexpr int64_t kBr = 64;  // queries per block (a multiple of 16: the vector width)
constexpr int64_t kBc = 64;  // keys per block
// Below this many flops a call runs on one thread: a parallel region costs microseconds (much
// more when the cores are shared), a 64 x 64 x 64 block product about 2 us.
constexpr double kMinParallelFlops = 4e6;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// 64-byte aligned, uninitialised scratch (per thread per call, and the backward repacks).
struct Buffer {
  Buffer() = default;
  explicit Buffer(int64_t n)
      : p(static_cast<float*>(::operator new[](
            static_cast<size_t>(std::max<int64_t>(n, 16)) * sizeof(float), std::align_val_t(64)))) {
  }
  ~Buffer() {
    if (p) ::operator delete[](p, std::align_val_t(64));
  }
  Buffer(Buffer&& o) noexcept : p(o.p) { o.p = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(p, o.p);
    return *this;
  }
  float* p = nullptr;
};

struct Dims {
  int64_t T, NH, NKV, HD, G;
  int64_t qs, ks;  // row strides (elements) between tokens: NH * HD and NKV * HD
  float scale;     // softmax scale in natural units
  bool causal;
};

Dims dims_of(const AttentionArgs& a) {
  Dims d;
  d.T = a.q.size(0);
  d.NH = a.q.size(1);
  d.HD = a.q.size(2);
  d.NKV = a.k.size(1);
  d.G = d.NH / d.NKV;
  d.qs = d.NH * d.HD;
  d.ks = d.NKV * d.HD;
  d.scale = a.scale != 0.f ? a.scale : 1.f / std::sqrt(static_cast<float>(d.HD));
  d.causal = a.causal;
  return d;
}

struct Seq {
  int64_t begin, end;
};

std::vector<Seq> sequences_of(const AttentionArgs& a, int64_t T) {
  std::vector<Seq> seqs;
  if (a.cu_seqlens.defined()) {
    const int32_t* cu = a.cu_seqlens.ptr<int32_t>();
    for (int64_t s = 0; s + 1 < a.cu_seqlens.numel(); ++s)
      if (cu[s + 1] > cu[s]) seqs.push_back({cu[s], cu[s + 1]});
  } else {
    const int64_t S = T / a.batch;
    for (int64_t b = 0; b < a.batch && S > 0; ++b) seqs.push_back({b * S, (b + 1) * S});
  }
  return seqs;
}

// Qt (HD x kBr) = c * Q[t0 : t0 + br, h, :]^T; columns br..kBr are zero.
void pack_transposed(const float* x, int64_t stride, int64_t br, int64_t HD, float c, float* xt) {
  for (int64_t i = br; i < kBr; ++i)
    for (int64_t d = 0; d < HD; ++d) xt[d * kBr + i] = 0.f;
  for (int64_t i = 0; i < br; ++i)
    for (int64_t d = 0; d < HD; ++d) xt[d * kBr + i] = c * x[i * stride + d];
}

#if defined(__AVX512F__)
inline __mmask16 lanes(int64_t n) {  // the first n lanes (n clamped to [0, 16])
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}
#endif

// Causal: query t0 + i sees key k0 + j when i >= k0 + j - t0.
inline int64_t first_visible_query(int64_t k0, int64_t j, int64_t t0) { return k0 + j - t0; }

// Forward softmax update over one (bc x br) tile S^T (row stride kBr), in place: S^T -> P^T.
// m, l: running max and sum per query; alpha receives the rescale factor 2^(m_old - m_new).
void online_softmax(float* st, int64_t bc, int64_t br, float* m, float* l, float* alpha) {
#if defined(__AVX512F__)
  for (int64_t i0 = 0; i0 < br; i0 += 16) {
    const __mmask16 mk = lanes(br - i0);
    const __m512 m_old = _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), mk, m + i0);
    __m512 mx = m_old;
    for (int64_t j = 0; j < bc; ++j)
      mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), mk, st + j * kBr + i0));
    // A column with every key masked so far keeps m = -inf; use 0 as its reference.
    const __m512 ref = _mm512_mask_blend_ps(
        _mm512_cmp_ps_mask(mx, _mm512_set1_ps(kNegInf), _CMP_EQ_OQ), mx, _mm512_setzero_ps());
    const __m512 a = attn::exp2_ps(_mm512_sub_ps(m_old, ref));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < bc; ++j) {
      const __m512 p = attn::exp2_ps(_mm512_sub_ps(_mm512_loadu_ps(st + j * kBr + i0), ref));
      _mm512_storeu_ps(st + j * kBr + i0, p);
      sum = _mm512_add_ps(sum, p);
    }
    const __m512 l_new = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, l + i0), a, sum);
    _mm512_mask_storeu_ps(l + i0, mk, l_new);
    _mm512_mask_storeu_ps(m + i0, mk, mx);
    _mm512_mask_storeu_ps(alpha + i0, mk, a);
  }
#else
  for (int64_t i = 0; i < br; ++i) {
    float mx = m[i];
    for (int64_t j = 0; j < bc; ++j) mx = std::max(mx, st[j * kBr + i]);
    const float ref = mx == kNegInf ? 0.f : mx;
    const float a = attn::exp2_approx(m[i] - ref);
    float sum = 0.f;
    for (int64_t j = 0; j < bc; ++j) {
      st[j * kBr + i] = attn::exp2_approx(st[j * kBr + i] - ref);
      sum += st[j * kBr + i];
    }
    l[i] = l[i] * a + sum;
    m[i] = mx;
    alpha[i] = a;
  }
#endif
}

struct ForwardScratch {
  explicit ForwardScratch(int64_t HD)
      : qt(HD * kBr), st(kBc * kBr), o(kBr * HD), m(kBr), l(kBr), alpha(kBr) {}
  Buffer qt, st, o, m, l, alpha;
};

// One query block [t0, t0 + br) of head h in the sequence [seq.begin, seq.end).
void forward_block(const Dims& d, const float* q, const float* k, const float* v, float* out,
                   float* lse, Seq seq, int64_t t0, int64_t br, int64_t h, ForwardScratch& w) {
  const int64_t HD = d.HD, kvh = h / d.G;
  float *qt = w.qt.p, *st = w.st.p, *o = w.o.p, *m = w.m.p, *l = w.l.p, *alpha = w.alpha.p;
  pack_transposed(q + t0 * d.qs + h * HD, d.qs, br, HD, d.scale * kLog2e, qt);
  std::fill(m, m + kBr, kNegInf);
  std::fill(l, l + kBr, 0.f);
  std::fill(o, o + br * HD, 0.f);
  const int64_t kend = d.causal ? std::min(seq.end, t0 + br) : seq.end;
  for (int64_t k0 = seq.begin; k0 < kend; k0 += kBc) {
    const int64_t bc = std::min(kBc, kend - k0);
    const float* kj = k + k0 * d.ks + kvh * HD;
    const float* vj = v + k0 * d.ks + kvh * HD;
    small_gemm(bc, br, HD, kj, d.ks, 1, qt, kBr, st, kBr, false);  // S^T = K_j Q_i^T
    if (d.causal && k0 + bc - 1 > t0)
      for (int64_t j = 0; j < bc; ++j) {
        const int64_t masked = std::min(br, first_visible_query(k0, j, t0));
        for (int64_t i = 0; i < masked; ++i) st[j * kBr + i] = kNegInf;
      }
    online_softmax(st, bc, br, m, l, alpha);
    if (k0 != seq.begin)
      for (int64_t i = 0; i < br; ++i) {
        const float a = alpha[i];
#pragma omp simd
        for (int64_t c = 0; c < HD; ++c) o[i * HD + c] *= a;
      }
    small_gemm(br, HD, bc, st, 1, kBr, vj, d.ks, o, HD, true);  // O += (P^T)^T V_j
  }
  for (int64_t i = 0; i < br; ++i) {
    const float inv = 1.f / l[i];
    float* dst = out + (t0 + i) * d.qs + h * HD;
#pragma omp simd
    for (int64_t c = 0; c < HD; ++c) dst[c] = o[i * HD + c] * inv;
    lse[(t0 + i) * d.NH + h] = kLn2 * (m[i] + std::log2(l[i]));
  }
}

// Backward tile math, in place on (bc x br) tiles: st (S^T, log2 units) -> P^T, and
// dpt (dP^T) -> dS^T = scale P^T (dP^T - D). lse2 = lse log2(e) and D per query (kBr each).
void probs_and_dscores(float* st, float* dpt, int64_t bc, int64_t br, const float* lse2,
                       const float* D, float scale, bool causal, int64_t k0, int64_t t0) {
#if defined(__AVX512F__)
  const __m512 vs = _mm512_set1_ps(scale);
  for (int64_t i0 = 0; i0 < br; i0 += 16) {
    const __mmask16 mk = lanes(br - i0);
    const __m512 vl = _mm512_loadu_ps(lse2 + i0), vd = _mm512_loadu_ps(D + i0);
    for (int64_t j = 0; j < bc; ++j) {
      __mmask16 ok = mk;
      if (causal) ok &= static_cast<__mmask16>(~lanes(first_visible_query(k0, j, t0) - i0));
      const __m512 p = _mm512_maskz_mov_ps(
          ok, attn::exp2_ps(_mm512_sub_ps(_mm512_loadu_ps(st + j * kBr + i0), vl)));
      _mm512_storeu_ps(st + j * kBr + i0, p);
      const __m512 dp = _mm512_sub_ps(_mm512_loadu_ps(dpt + j * kBr + i0), vd);
      _mm512_storeu_ps(dpt + j * kBr + i0, _mm512_mul_ps(_mm512_mul_ps(p, dp), vs));
    }
  }
#else
  for (int64_t j = 0; j < bc; ++j)
    for (int64_t i = 0; i < br; ++i) {
      const bool ok = !causal || i >= first_visible_query(k0, j, t0);
      const float p = ok ? attn::exp2_approx(st[j * kBr + i] - lse2[i]) : 0.f;
      st[j * kBr + i] = p;
      dpt[j * kBr + i] = scale * p * (dpt[j * kBr + i] - D[i]);
    }
#endif
}

// Backward inputs repacked per (head, query block): Q^T scaled to log2 units and dO^T (HD x kBr
// each), lse in log2 units and D = rowsum(dO * out) (kBr each, zero past the block's end).
struct BackwardPack {
  std::vector<int64_t> block0;  // first global query block of each sequence
  int64_t blocks = 0;           // query blocks over all sequences
  Buffer qt, dot, lse2, D;
  int64_t at(int64_t h, int64_t b) const { return h * blocks + b; }
};

struct BackwardScratch {
  explicit BackwardScratch(int64_t HD)
      : st(kBc * kBr), dpt(kBc * kBr), dk(kBc * HD), dv(kBc * HD) {}
  Buffer st, dpt, dk, dv;
};

// Key block [k0, k0 + bc) of kv head kvh in sequence `si`: writes dk, dv rows, adds into dq.
void backward_block(const Dims& d, const AttentionArgs& a, const BackwardPack& pk,
                    const std::vector<Seq>& seqs, int64_t si, int64_t kvh, int64_t k0, int64_t bc,
                    float* dq, BackwardScratch& w) {
  const int64_t HD = d.HD;
  const Seq seq = seqs[static_cast<size_t>(si)];
  const float* q = a.q.ptr<float>();
  const float* dout = a.dout.ptr<float>();
  const float* kj = a.k.ptr<float>() + k0 * d.ks + kvh * HD;
  const float* vj = a.v.ptr<float>() + k0 * d.ks + kvh * HD;
  float *st = w.st.p, *dpt = w.dpt.p, *dk = w.dk.p, *dv = w.dv.p;
  std::fill(dk, dk + bc * HD, 0.f);
  std::fill(dv, dv + bc * HD, 0.f);
  const int64_t first_qb = d.causal ? (k0 - seq.begin) / kBr : 0;
  for (int64_t h = kvh * d.G; h < (kvh + 1) * d.G; ++h)
    for (int64_t qb = first_qb; seq.begin + qb * kBr < seq.end; ++qb) {
      const int64_t t0 = seq.begin + qb * kBr, br = std::min(kBr, seq.end - t0);
      const int64_t p = pk.at(h, pk.block0[static_cast<size_t>(si)] + qb);
      const float* qt = pk.qt.p + p * HD * kBr;
      const float* dot = pk.dot.p + p * HD * kBr;
      const float* qi = q + t0 * d.qs + h * HD;
      const float* doi = dout + t0 * d.qs + h * HD;
      small_gemm(bc, br, HD, kj, d.ks, 1, qt, kBr, st, kBr, false);    // S^T = K_j Q_i^T
      small_gemm(bc, br, HD, vj, d.ks, 1, dot, kBr, dpt, kBr, false);  // dP^T = V_j dO_i^T
      probs_and_dscores(st, dpt, bc, br, pk.lse2.p + p * kBr, pk.D.p + p * kBr, d.scale, d.causal,
                        k0, t0);
      small_gemm(bc, HD, br, st, kBr, 1, doi, d.qs, dv, HD, true);  // dV_j += P^T dO_i
      small_gemm(bc, HD, br, dpt, kBr, 1, qi, d.qs, dk, HD, true);  // dK_j += dS^T Q_i
      small_gemm(br, HD, bc, dpt, 1, kBr, kj, d.ks, dq + t0 * d.qs + h * HD, d.qs,
                 true);  // dQ_i += dS K_j
    }
  float* dk_out = a.dk.ptr<float>() + k0 * d.ks + kvh * HD;
  float* dv_out = a.dv.ptr<float>() + k0 * d.ks + kvh * HD;
  for (int64_t j = 0; j < bc; ++j) {
    std::copy(dk + j * HD, dk + (j + 1) * HD, dk_out + j * d.ks);
    std::copy(dv + j * HD, dv + (j + 1) * HD, dv_out + j * d.ks);
  }
}

BackwardPack pack_backward(const Dims& d, const AttentionArgs& a, const std::vector<Seq>& seqs,
                           bool parallel) {
  BackwardPack pk;
  for (const Seq& s : seqs) {
    pk.block0.push_back(pk.blocks);
    pk.blocks += (s.end - s.begin + kBr - 1) / kBr;
  }
  const size_t n = static_cast<size_t>(d.NH * pk.blocks);
  pk.qt = Buffer(static_cast<int64_t>(n) * d.HD * kBr);
  pk.dot = Buffer(static_cast<int64_t>(n) * d.HD * kBr);
  pk.lse2 = Buffer(static_cast<int64_t>(n) * kBr);
  pk.D = Buffer(static_cast<int64_t>(n) * kBr);
  const float *q = a.q.ptr<float>(), *out = a.out.ptr<float>(), *dout = a.dout.ptr<float>();
  const float* lse = a.lse.ptr<float>();
  const int64_t nseq = static_cast<int64_t>(seqs.size());
#pragma omp parallel for collapse(2) schedule(dynamic) if (parallel)
  for (int64_t si = 0; si < nseq; ++si)
    for (int64_t h = 0; h < d.NH; ++h) {
      const Seq s = seqs[static_cast<size_t>(si)];
      for (int64_t t0 = s.begin; t0 < s.end; t0 += kBr) {
        const int64_t br = std::min(kBr, s.end - t0);
        const int64_t p = pk.at(h, pk.block0[static_cast<size_t>(si)] + (t0 - s.begin) / kBr);
        const int64_t row = t0 * d.qs + h * d.HD;
        pack_transposed(q + row, d.qs, br, d.HD, d.scale * kLog2e, pk.qt.p + p * d.HD * kBr);
        pack_transposed(dout + row, d.qs, br, d.HD, 1.f, pk.dot.p + p * d.HD * kBr);
        std::fill(pk.D.p + p * kBr, pk.D.p + (p + 1) * kBr, 0.f);
        std::fill(pk.lse2.p + p * kBr, pk.lse2.p + (p + 1) * kBr, 0.f);
        for (int64_t i = 0; i < br; ++i) {
          const float* o = out + row + i * d.qs;
          const float* g = dout + row + i * d.qs;
          float dsum = 0.f;
#pragma omp simd reduction(+ : dsum)
          for (int64_t c = 0; c < d.HD; ++c) dsum += o[c] * g[c];
          pk.D.p[p * kBr + i] = dsum;
          pk.lse2.p[p * kBr + i] = lse[(t0 + i) * d.NH + h] * kLog2e;
        }
      }
    }
  return pk;
}

}  // namespace

void attention_forward(const AttentionArgs& args) {
  const Dims d = dims_of(args);
  const std::vector<Seq> seqs = sequences_of(args, d.T);
  struct Item {
    int64_t seq, t0, h, cost;
  };
  std::vector<Item> items;
  for (size_t s = 0; s < seqs.size(); ++s)
    for (int64_t t0 = seqs[s].begin; t0 < seqs[s].end; t0 += kBr)
      for (int64_t h = 0; h < d.NH; ++h) {
        const int64_t keys = d.causal ? std::min(t0 + kBr, seqs[s].end) - seqs[s].begin
                                      : seqs[s].end - seqs[s].begin;
        items.push_back({static_cast<int64_t>(s), t0, h, keys});
      }
  // Heaviest first, so the dynamic schedule ends with small items.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.cost > y.cost; });
  const float *q = args.q.ptr<float>(), *k = args.k.ptr<float>(), *v = args.v.ptr<float>();
  float *out = args.out.ptr<float>(), *lse = args.lse.ptr<float>();
  const int64_t n = static_cast<int64_t>(items.size());
  double flops = 0;
  for (const Item& it : items) flops += 4.0 * static_cast<double>(it.cost) * kBr * d.HD;
#pragma omp parallel if (flops > kMinParallelFlops)
  {
    ForwardScratch w(d.HD);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      const Item& it = items[static_cast<size_t>(i)];
      const Seq s = seqs[static_cast<size_t>(it.seq)];
      forward_block(d, q, k, v, out, lse, s, it.t0, std::min(kBr, s.end - it.t0), it.h, w);
    }
  }
}

void attention_backward(const AttentionArgs& args) {
  const Dims d = dims_of(args);
  const std::vector<Seq> seqs = sequences_of(args, d.T);
  double flops = 0;
  bool equal_lengths = true;
  for (const Seq& s : seqs) {
    const double len = static_cast<double>(s.end - s.begin);
    flops += 10.0 * len * (d.causal ? (len + 1) / 2 : len) * static_cast<double>(d.HD * d.NH);
    equal_lengths = equal_lengths && s.end - s.begin == seqs[0].end - seqs[0].begin;
  }
  const bool parallel = flops > kMinParallelFlops;
  const BackwardPack pk = pack_backward(d, args, seqs, parallel);
  struct Item {
    int64_t seq, kvh, k0, cost;  // k0 < 0: the whole group (every key block of the sequence)
  };
  int nthr = 1;
#ifdef _OPENMP
  if (parallel) nthr = omp_get_max_threads();
#endif
  // Whole groups as items when they balance over the threads: many of them, or a multiple of
  // the thread count with equal work each.
  const int64_t groups = static_cast<int64_t>(seqs.size()) * d.NKV;
  const bool own_dq = nthr == 1 || groups >= 4 * nthr || (groups % nthr == 0 && equal_lengths);
  std::vector<Item> items;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t len = seqs[s].end - seqs[s].begin;
    for (int64_t kvh = 0; kvh < d.NKV; ++kvh) {
      if (own_dq) {
        items.push_back({static_cast<int64_t>(s), kvh, -1, len * len});
        continue;
      }
      for (int64_t k0 = seqs[s].begin; k0 < seqs[s].end; k0 += kBc)
        items.push_back({static_cast<int64_t>(s), kvh, k0, d.causal ? seqs[s].end - k0 : len});
    }
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.cost > y.cost; });

  float* dq = args.dq.ptr<float>();
  const int64_t dq_numel = d.T * d.qs;
  // Private dQ accumulators (zeroed) when several threads may add into the same rows.
  std::vector<float> dq_private(own_dq ? 0 : static_cast<size_t>(nthr * dq_numel));
  const int64_t n = static_cast<int64_t>(items.size());
#pragma omp parallel num_threads(nthr)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float* dq_acc = own_dq ? dq : dq_private.data() + tid * dq_numel;
    if (own_dq) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < dq_numel; ++i) dq[i] = 0.f;
    }
    BackwardScratch w(d.HD);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      const Item& it = items[static_cast<size_t>(i)];
      const Seq s = seqs[static_cast<size_t>(it.seq)];
      const int64_t k_begin = it.k0 < 0 ? s.begin : it.k0;
      const int64_t k_end = it.k0 < 0 ? s.end : std::min(s.end, it.k0 + kBc);
      for (int64_t k0 = k_begin; k0 < k_end; k0 += kBc)
        backward_block(d, args, pk, seqs, it.seq, it.kvh, k0, std::min(kBc, k_end - k0), dq_acc, w);
    }
    if (!own_dq) {
#pragma omp for schedule(static)
      for (int64_t e = 0; e < dq_numel; ++e) {
        float sum = 0.f;
        for (int t = 0; t < nthr; ++t) sum += dq_private[static_cast<size_t>(t * dq_numel + e)];
        dq[e] = sum;
      }
    }
  }
}

}  // namespace foundry::cpu
