// Naive reference attention, per query row in f64:
//   s_j = scale q . k_j over the visible keys j of the row's sequence (j <= t when causal),
//   p = softmax(s), out = sum_j p_j v_j, lse = log sum_j exp(s_j);
//   backward: dp_j = dout . v_j, dS_j = p_j (dp_j - sum_i p_i dp_i),
//   dq = scale sum_j dS_j k_j, dk_j += scale dS_j q, dv_j += p_j dout.
#include "foundry/backend/cpu/ref/attention_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace foundry::ref {

namespace {

struct Layout {
  int64_t T, NH, NKV, HD, G;
  double scale;
  std::vector<int64_t> seq_begin;  // per token: first token of its sequence
};

Layout layout_of(const AttentionArgs& a) {
  Layout L;
  L.T = a.q.size(0);
  L.NH = a.q.size(1);
  L.HD = a.q.size(2);
  L.NKV = a.k.size(1);
  L.G = L.NH / L.NKV;
  L.scale = a.scale != 0.f ? a.scale : 1.0 / std::sqrt(static_cast<double>(L.HD));
  L.seq_begin.resize(static_cast<size_t>(L.T));
  if (a.cu_seqlens.defined()) {
    const int32_t* cu = a.cu_seqlens.ptr<int32_t>();
    for (int64_t s = 0; s + 1 < a.cu_seqlens.numel(); ++s)
      for (int64_t t = cu[s]; t < cu[s + 1]; ++t) L.seq_begin[static_cast<size_t>(t)] = cu[s];
  } else {
    const int64_t S = L.T / a.batch;
    for (int64_t t = 0; t < L.T; ++t) L.seq_begin[static_cast<size_t>(t)] = t / S * S;
  }
  return L;
}

// Keys visible from query t: [begin, end).
void key_range(const Layout& L, const AttentionArgs& a, int64_t t, int64_t& begin, int64_t& end) {
  begin = L.seq_begin[static_cast<size_t>(t)];
  if (a.causal) {
    end = t + 1;
    return;
  }
  end = begin;
  while (end < L.T && L.seq_begin[static_cast<size_t>(end)] == begin) ++end;
}

// Probabilities p[j - begin] for query t, head h; returns lse.
double probs(const Layout& L, const AttentionArgs& a, int64_t t, int64_t h, int64_t begin,
             int64_t end, std::vector<double>& p) {
  const float* q = a.q.ptr<float>();
  const float* k = a.k.ptr<float>();
  const int64_t kvh = h / L.G;
  p.assign(static_cast<size_t>(end - begin), 0.0);
  double mx = -INFINITY;
  for (int64_t j = begin; j < end; ++j) {
    double s = 0;
    for (int64_t d = 0; d < L.HD; ++d)
      s += static_cast<double>(q[(t * L.NH + h) * L.HD + d]) * k[(j * L.NKV + kvh) * L.HD + d];
    p[static_cast<size_t>(j - begin)] = L.scale * s;
    mx = std::max(mx, L.scale * s);
  }
  double sum = 0;
  for (double& x : p) {
    x = std::exp(x - mx);
    sum += x;
  }
  for (double& x : p) x /= sum;
  return mx + std::log(sum);
}

}  // namespace

void attention_forward(const AttentionArgs& a) {
  const Layout L = layout_of(a);
  const float* v = a.v.ptr<float>();
  float* out = a.out.ptr<float>();
  float* lse = a.lse.ptr<float>();
  std::vector<double> p;
  for (int64_t t = 0; t < L.T; ++t)
    for (int64_t h = 0; h < L.NH; ++h) {
      int64_t begin, end;
      key_range(L, a, t, begin, end);
      lse[t * L.NH + h] = static_cast<float>(probs(L, a, t, h, begin, end, p));
      for (int64_t d = 0; d < L.HD; ++d) {
        double o = 0;
        for (int64_t j = begin; j < end; ++j)
          o += p[static_cast<size_t>(j - begin)] * v[(j * L.NKV + h / L.G) * L.HD + d];
        out[(t * L.NH + h) * L.HD + d] = static_cast<float>(o);
      }
    }
}

void attention_backward(const AttentionArgs& a) {
  const Layout L = layout_of(a);
  const float* q = a.q.ptr<float>();
  const float* k = a.k.ptr<float>();
  const float* v = a.v.ptr<float>();
  const float* dout = a.dout.ptr<float>();
  std::vector<double> dq(static_cast<size_t>(L.T * L.NH * L.HD), 0.0);
  std::vector<double> dk(static_cast<size_t>(L.T * L.NKV * L.HD), 0.0);
  std::vector<double> dv(dk.size(), 0.0);
  std::vector<double> p, dp;
  for (int64_t t = 0; t < L.T; ++t)
    for (int64_t h = 0; h < L.NH; ++h) {
      int64_t begin, end;
      key_range(L, a, t, begin, end);
      probs(L, a, t, h, begin, end, p);
      const int64_t kvh = h / L.G;
      const int64_t qi = (t * L.NH + h) * L.HD;
      dp.assign(p.size(), 0.0);
      double pdp = 0;
      for (int64_t j = begin; j < end; ++j) {
        double s = 0;
        for (int64_t d = 0; d < L.HD; ++d)
          s += static_cast<double>(dout[qi + d]) * v[(j * L.NKV + kvh) * L.HD + d];
        dp[static_cast<size_t>(j - begin)] = s;
        pdp += p[static_cast<size_t>(j - begin)] * s;
      }
      for (int64_t j = begin; j < end; ++j) {
        const double pj = p[static_cast<size_t>(j - begin)];
        const double ds = pj * (dp[static_cast<size_t>(j - begin)] - pdp);
        const int64_t kj = (j * L.NKV + kvh) * L.HD;
        for (int64_t d = 0; d < L.HD; ++d) {
          dq[static_cast<size_t>(qi + d)] += L.scale * ds * k[kj + d];
          dk[static_cast<size_t>(kj + d)] += L.scale * ds * q[qi + d];
          dv[static_cast<size_t>(kj + d)] += pj * dout[qi + d];
        }
      }
    }
  std::transform(dq.begin(), dq.end(), a.dq.ptr<float>(),
                 [](double x) { return static_cast<float>(x); });
  std::transform(dk.begin(), dk.end(), a.dk.ptr<float>(),
                 [](double x) { return static_cast<float>(x); });
  std::transform(dv.begin(), dv.end(), a.dv.ptr<float>(),
                 [](double x) { return static_cast<float>(x); });
}

}  // namespace foundry::ref
