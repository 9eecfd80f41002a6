#include "foundry/moe/load_balancing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "foundry/core/check.h"

namespace foundry::moe {

ScoreFunction parse_score_function(const std::string& name) {
  if (name == "softmax") return ScoreFunction::softmax;
  if (name == "sigmoid") return ScoreFunction::sigmoid;
  if (name == "sqrtsoftplus") return ScoreFunction::sqrtsoftplus;
  FOUNDRY_FAIL("moe router: score_function '{}' (expected softmax, sigmoid or sqrtsoftplus)", name);
}

namespace {
double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z)); }
double softplus(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z))); }
}  // namespace

double score_value(ScoreFunction fn, double z) {
  if (fn == ScoreFunction::sigmoid) return sigmoid(z);
  FOUNDRY_CHECK(fn == ScoreFunction::sqrtsoftplus, "moe score_value: softmax is row-wise");
  return std::sqrt(softplus(z));
}

double score_derivative(ScoreFunction fn, double z, double f) {
  if (fn == ScoreFunction::sigmoid) return f * (1.0 - f);
  return sigmoid(z) / (2.0 * f);  // d sqrt(softplus(z)) / dz
}

void softmax_row(const double* z, int64_t n, double* out) {
  const double m = *std::max_element(z, z + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += out[i] = std::exp(z[i] - m);
  for (int64_t i = 0; i < n; ++i) out[i] /= sum;
}

void topk_indices(const double* v, int64_t n, int64_t k, int64_t* out, const uint8_t* allowed) {
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    if (!allowed || allowed[i]) order.push_back(i);
  FOUNDRY_CHECK(static_cast<int64_t>(order.size()) >= k, "moe topk: k {} of {} candidates", k, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int64_t a, int64_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  std::copy(order.begin(), order.begin() + k, out);
}

AuxScores aux_scores(const double* logits, int64_t T, int64_t E, int64_t k, ScoreFunction fn,
                     const uint8_t* padding) {
  AuxScores a{T, E, k, 0, fn, std::vector<double>(static_cast<size_t>(T * E)),
              std::vector<uint8_t>(static_cast<size_t>(T * E), 0), std::vector<double>(static_cast<size_t>(E), 0)};
  if (padding) a.padding.assign(padding, padding + T);
  std::vector<int64_t> idx(static_cast<size_t>(k));
  for (int64_t t = 0; t < T; ++t) {
    const double* z = logits + t * E;
    double* s = a.s.data() + t * E;
    if (padding && padding[t]) continue;  // row stays zero
    ++a.valid_tokens;
    if (fn == ScoreFunction::softmax) {
      softmax_row(z, E, s);
    } else {
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += s[e] = score_value(fn, z[e]);
      for (int64_t e = 0; e < E; ++e) s[e] /= sum + 1e-20;
    }
    topk_indices(s, E, k, idx.data());
    for (int64_t j = 0; j < k; ++j) {
      a.map[static_cast<size_t>(t * E + idx[j])] = 1;
      a.counts[static_cast<size_t>(idx[j])] += 1;
    }
  }
  return a;
}

void aux_scores_backward(const double* logits, const AuxScores& a, const double* ds, double* dlogits) {
  const int64_t E = a.experts;
  std::vector<double> f(static_cast<size_t>(E));
  for (int64_t t = 0; t < a.tokens; ++t) {
    const double* z = logits + t * E;
    const double* s = a.s.data() + t * E;
    const double* g = ds + t * E;
    double* dz = dlogits + t * E;
    if (!a.padding.empty() && a.padding[static_cast<size_t>(t)]) continue;  // s is 0 there: no gradient
    if (a.fn == ScoreFunction::softmax) {
      double gs = 0;
      for (int64_t e = 0; e < E; ++e) gs += g[e] * s[e];
      for (int64_t e = 0; e < E; ++e) dz[e] += s[e] * (g[e] - gs);
    } else {  // s = f / D, D = sum f + 1e-20: df_e = g_e / D - sum_i g_i f_i / D^2
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += f[e] = score_value(a.fn, z[e]);
      const double D = sum + 1e-20;
      double gf = 0;
      for (int64_t e = 0; e < E; ++e) gf += g[e] * f[e];
      for (int64_t e = 0; e < E; ++e)
        dz[e] += (g[e] / D - gf / (D * D)) * score_derivative(a.fn, z[e], f[e]);
    }
  }
}

namespace {
// coeff * E / (k * T^2) * sum_e n[e] * sum_{t in rows} s[t,e] over rows [t0, t0 + rows*stride) step stride.
double switch_loss(const AuxScores& a, const std::vector<double>& n, double total_tokens, double coeff,
                   int64_t t0, int64_t rows, int64_t stride, double* ds) {
  const int64_t E = a.experts;
  const double factor = static_cast<double>(E) * coeff / (static_cast<double>(a.topk) * total_tokens * total_tokens);
  double loss = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = t0 + r * stride;
    for (int64_t e = 0; e < E; ++e) {
      loss += a.s[static_cast<size_t>(t * E + e)] * n[static_cast<size_t>(e)];
      if (ds) ds[t * E + e] += factor * n[static_cast<size_t>(e)];
    }
  }
  return loss * factor;
}
}  // namespace

double switch_load_balancing_loss(const AuxScores& a, double coeff, const std::vector<double>& n,
                                  double total_tokens, double* ds) {
  FOUNDRY_CHECK(static_cast<int64_t>(n.size()) == a.experts, "moe switch_load_balancing_loss: {} counts for {} experts",
                n.size(), a.experts);
  if (total_tokens == 0) return 0.0;
  return switch_loss(a, n, total_tokens, coeff, 0, a.tokens, 1, ds);
}

double aux_loss(const AuxScores& a, double coeff, double* ds) {
  if (a.valid_tokens == 0) return 0.0;
  return switch_loss(a, a.counts, static_cast<double>(a.valid_tokens), coeff, 0, a.tokens, 1, ds);
}

double seq_aux_loss(const AuxScores& a, double coeff, int64_t S, double* ds) {
  FOUNDRY_CHECK(S > 0 && a.tokens % S == 0, "moe seq_aux_loss: {} tokens are not whole sequences of {}",
                a.tokens, S);
  if (a.valid_tokens == 0) return 0.0;
  const int64_t B = a.tokens / S, E = a.experts;
  // Tokens per sequence: valid / B (= S without padding), one value shared by every sequence
  // (get_tokens_per_expert_and_token_count on the (S, B*E) map with topk = k * B).
  const double per_seq = static_cast<double>(a.valid_tokens) / static_cast<double>(B);
  double loss = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> n(static_cast<size_t>(E), 0);
    for (int64_t s = 0; s < S; ++s)
      for (int64_t e = 0; e < E; ++e) n[static_cast<size_t>(e)] += a.map[static_cast<size_t>((b * S + s) * E + e)];
    // The mean over sequences: each sequence's loss (and gradient) divided by B.
    loss += switch_loss(a, n, per_seq, coeff / static_cast<double>(B), b * S, S, 1, ds);
  }
  return loss;
}

double global_aux_loss(const AuxScores& a, double coeff, const std::vector<double>& avg_counts, double* ds) {
  FOUNDRY_CHECK(static_cast<int64_t>(avg_counts.size()) == a.experts, "moe global_aux_loss: {} counts for {} experts",
                avg_counts.size(), a.experts);
  if (a.valid_tokens == 0) return 0.0;
  return switch_loss(a, avg_counts, static_cast<double>(a.valid_tokens), coeff, 0, a.tokens, 1, ds);
}

double z_loss(const double* logits, int64_t T, int64_t E, double coeff, double* dlogits, const uint8_t* padding) {
  double sum = 0;
  int64_t valid = 0;
  for (int64_t t = 0; t < T; ++t) valid += !(padding && padding[t]);
  const double denom = static_cast<double>(std::max<int64_t>(valid, 1));
  for (int64_t t = 0; t < T; ++t) {
    if (padding && padding[t]) continue;
    const double* z = logits + t * E;
    const double m = *std::max_element(z, z + E);
    double se = 0;
    for (int64_t e = 0; e < E; ++e) se += std::exp(z[e] - m);
    const double lse = m + std::log(se);
    sum += lse * lse;
    if (dlogits)
      for (int64_t e = 0; e < E; ++e)
        dlogits[t * E + e] += coeff * 2.0 * lse * std::exp(z[e] - lse) / denom;
  }
  return coeff * sum / denom;
}

}  // namespace foundry::moe
