// Next-token sampling: temperature, top-k, top-p, greedy. Formulas in sampler.h.
#include "foundry/models/gpt/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace foundry {

Sampler::Sampler(SamplerConfig cfg, uint64_t seed, uint64_t offset) : cfg_(cfg), rng_(seed, offset) {
  FOUNDRY_CHECK(std::isfinite(cfg_.temperature) && cfg_.temperature >= 0.f,
                "sampler: temperature must be >= 0 (0 = greedy), got {}", cfg_.temperature);
  FOUNDRY_CHECK(cfg_.top_k >= 0, "sampler: top_k must be >= 0 (0 = off), got {}", cfg_.top_k);
  FOUNDRY_CHECK(cfg_.top_p > 0.f && cfg_.top_p <= 1.f,
                "sampler: top_p must be in (0, 1] (1 = off), got {}", cfg_.top_p);
}

namespace {

void check_logits(std::span<const float> logits) {
  FOUNDRY_CHECK(!logits.empty(), "sampler: empty logits");
  bool any = false;
  for (size_t i = 0; i < logits.size(); ++i) {
    FOUNDRY_CHECK(!std::isnan(logits[i]) && logits[i] != INFINITY,
                  "sampler: logit {} of token {} is not a number or +inf", logits[i], i);
    any = any || logits[i] != -INFINITY;
  }
  FOUNDRY_CHECK(any, "sampler: every one of the {} logits is -inf", logits.size());
}

}  // namespace

int32_t Sampler::argmax(std::span<const float> logits) {
  check_logits(logits);
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Kept Sampler::kept(std::span<const float> logits) const {
  check_logits(logits);
  Kept k;
  if (greedy()) {
    k.ids = {argmax(logits)};
    k.probs = {1.0};
    return k;
  }
  const int64_t V = static_cast<int64_t>(logits.size());
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  if (cfg_.top_k > 0 || cfg_.top_p < 1.f) {
    // Candidates in descending logit order (ties: lower id first); top-k needs only the first
    // k, plain temperature sampling no order at all.
    const auto before = [&](int32_t a, int32_t b) {
      return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
             (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
    };
    const int64_t n = cfg_.top_k > 0 ? std::min(cfg_.top_k, V) : V;
    std::partial_sort(order.begin(), order.begin() + n, order.end(), before);
    order.resize(static_cast<size_t>(n));
    while (logits[static_cast<size_t>(order.back())] == -INFINITY) order.pop_back();  // masked
  }
  // softmax(z / T) over the candidates, in f64; (logit - max) / T stays finite for tiny T.
  const double inv_t = 1.0 / static_cast<double>(cfg_.temperature);
  const double lmax = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(order.size());
  double sum = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    p[i] = std::exp((static_cast<double>(logits[static_cast<size_t>(order[i])]) - lmax) * inv_t);
    sum += p[i];
  }
  // Top-p: the smallest prefix (in descending order) with cumulative probability >= top_p.
  size_t keep = order.size();
  if (cfg_.top_p < 1.f) {
    const double target = static_cast<double>(cfg_.top_p) * sum;
    double cum = 0;
    for (keep = 0; keep < order.size();) {
      cum += p[keep++];
      if (cum >= target) break;
    }
  }
  double kept_sum = 0;
  for (size_t i = 0; i < keep; ++i) kept_sum += p[i];
  k.ids.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep));
  k.probs.resize(keep);
  for (size_t i = 0; i < keep; ++i) k.probs[i] = p[i] / kept_sum;
  return k;
}

std::vector<double> Sampler::distribution(std::span<const float> logits) const {
  const Kept k = kept(logits);
  std::vector<double> d(logits.size(), 0.0);
  for (size_t i = 0; i < k.ids.size(); ++i) d[static_cast<size_t>(k.ids[i])] = k.probs[i];
  return d;
}

double Sampler::uniform() {
  const auto w = philox4x32_10({static_cast<uint32_t>(rng_.offset()),
                                static_cast<uint32_t>(rng_.offset() >> 32), 0u, 0u},
                               {static_cast<uint32_t>(rng_.seed()),
                                static_cast<uint32_t>(rng_.seed() >> 32)});
  rng_.set_offset(rng_.offset() + 1);
  const uint64_t bits = (static_cast<uint64_t>(w[0]) << 21) | (w[1] >> 11);  // 53 bits
  return static_cast<double>(bits) * 0x1p-53;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (greedy()) return argmax(logits);
  const Kept k = kept(logits);
  const double u = uniform();
  double cum = 0;
  for (size_t i = 0; i < k.ids.size(); ++i) {
    cum += k.probs[i];
    if (u < cum) return k.ids[i];
  }
  for (size_t i = k.ids.size(); i-- > 0;)  // u within rounding of 1: the last possible token
    if (k.probs[i] > 0) return k.ids[i];
  return k.ids.back();
}

}  // namespace foundry
