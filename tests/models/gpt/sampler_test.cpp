// Sampler (models/gpt/sampler.h): greedy = argmax, top_k = 1 and a tiny top_p equal greedy,
// the temperature -> 0 limit, the kept sets of top-k / top-p, the empirical distribution of many
// seeded draws against softmax(logits / T) restricted to top-k / top-p (Pearson chi-square),
// determinism and resumption for a seed, bad input.
#include "foundry/models/gpt/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "testing.h"

namespace foundry {
namespace {

std::vector<float> random_logits(int64_t V, uint64_t seed, float lo = -2.f, float hi = 2.f) {
  return testing::randu({V}, seed, lo, hi).to_vector();
}

int32_t first_argmax(const std::vector<float>& z) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(z.size()); ++i)
    if (z[static_cast<size_t>(i)] > z[static_cast<size_t>(best)]) best = i;
  return best;
}

// The expected distribution, computed independently of the sampler: softmax(z / T) over all
// tokens; top-k: only the k largest (ties: lower id), renormalised; top-p: of those, sorted
// descending, the shortest prefix reaching cumulative probability p, renormalised.
std::vector<double> expected_distribution(const std::vector<float>& z, double T, int64_t top_k,
                                          double top_p) {
  const size_t V = z.size();
  std::vector<size_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return z[a] > z[b]; });
  if (top_k > 0) idx.resize(std::min<size_t>(V, static_cast<size_t>(top_k)));
  std::vector<double> w(idx.size());
  double total = 0;
  for (size_t i = 0; i < idx.size(); ++i) total += w[i] = std::exp(z[idx[i]] / T);
  size_t keep = idx.size();
  if (top_p < 1) {
    double cum = 0;
    for (keep = 0; keep < idx.size() && cum < top_p * total;) cum += w[keep++];
  }
  double kept_total = 0;
  for (size_t i = 0; i < keep; ++i) kept_total += w[i];
  std::vector<double> p(V, 0.0);
  for (size_t i = 0; i < keep; ++i) p[idx[i]] = w[i] / kept_total;
  return p;
}

// Upper quantile of chi-square with df degrees of freedom at tail probability 1e-6
// (Wilson-Hilferty: (X / df)^(1/3) is close to normal with mean 1 - 2 / (9 df) and variance
// 2 / (9 df); z = 4.753 is the standard normal's 1 - 1e-6 quantile).
double chi2_bound(int64_t df) {
  const double v = 2.0 / (9.0 * static_cast<double>(df)), z = 4.753;
  return static_cast<double>(df) * std::pow(1.0 - v + z * std::sqrt(v), 3.0);
}

// Pearson's X^2 = sum (observed - N p)^2 / (N p) over the tokens with p > 0.
double pearson(const std::vector<int64_t>& counts, const std::vector<double>& p, int64_t N) {
  double x2 = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) {
      const double e = static_cast<double>(N) * p[i];
      x2 += (static_cast<double>(counts[i]) - e) * (static_cast<double>(counts[i]) - e) / e;
    }
  return x2;
}

TEST(Sampler, GreedyIsArgmax) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::vector<float> z = random_logits(50, seed);
    Sampler s({.temperature = 0.f}, seed);
    EXPECT_TRUE(s.greedy());
    EXPECT_EQ(s.sample(z), first_argmax(z));
    EXPECT_EQ(s.rng().offset(), 0u);  // greedy draws no random number
    const std::vector<double> d = s.distribution(z);
    EXPECT_EQ(d[static_cast<size_t>(first_argmax(z))], 1.0);
  }
  // Ties: the lowest id.
  EXPECT_EQ(Sampler::argmax(std::vector<float>{1.f, 3.f, -1.f, 3.f}), 1);
}

TEST(Sampler, TopK1AndTinyTopPAreGreedy) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::vector<float> z = random_logits(64, seed);
    Sampler k1({.temperature = 1.5f, .top_k = 1}, seed), tiny_p({.temperature = 1.5f, .top_p = 1e-6f}, seed);
    for (int draw = 0; draw < 20; ++draw) {
      EXPECT_EQ(k1.sample(z), first_argmax(z));
      EXPECT_EQ(tiny_p.sample(z), first_argmax(z));
    }
  }
  // Tied maxima: top_p keeps the lower id first, as argmax does.
  Sampler tiny_p({.top_p = 1e-6f}, 3);
  for (int draw = 0; draw < 10; ++draw) EXPECT_EQ(tiny_p.sample(std::vector<float>{0.f, 2.f, 2.f}), 1);
}

TEST(Sampler, TemperatureToZeroTendsToGreedy) {
  // Logits at least 0.05 apart: at T = 1e-3 every other token has probability < e^-50.
  std::vector<float> z(40);
  for (size_t i = 0; i < z.size(); ++i) z[i] = 0.05f * static_cast<float>((i * 17) % 40);
  const int32_t best = first_argmax(z);
  for (float T : {1e-3f, 1e-20f}) {
    Sampler s({.temperature = T}, 9);
    const std::vector<double> d = s.distribution(z);
    EXPECT_NEAR(d[static_cast<size_t>(best)], 1.0, 1e-15) << "T " << T;
    for (int draw = 0; draw < 200; ++draw) ASSERT_EQ(s.sample(z), best) << "T " << T;
  }
  // And the mass on the argmax grows monotonically as T falls.
  double last = 0;
  for (float T : {4.f, 1.f, 0.5f, 0.1f, 0.02f}) {
    const double p = Sampler({.temperature = T}, 1).distribution(z)[static_cast<size_t>(best)];
    EXPECT_GT(p, last) << "T " << T;
    last = p;
  }
}

TEST(Sampler, DistributionMatchesIndependentFormula) {
  const std::vector<float> z = random_logits(97, 5);
  struct C {
    float T;
    int64_t k;
    float p;
  };
  for (const C c : {C{1.f, 0, 1.f}, C{0.6f, 0, 1.f}, C{1.f, 10, 1.f}, C{2.f, 0, 0.5f},
                    C{0.8f, 30, 0.9f}, C{1.f, 200, 1.f}}) {
    const std::vector<double> got = Sampler({.temperature = c.T, .top_k = c.k, .top_p = c.p}, 1).distribution(z);
    const std::vector<double> want = expected_distribution(z, c.T, c.k, c.p);
    for (size_t i = 0; i < z.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-12) << "T " << c.T << " k " << c.k << " p " << c.p << " token " << i;
    if (c.k > 0 && c.k < 97 && c.p == 1.f) {  // top-k alone keeps exactly k tokens
      EXPECT_EQ(std::count_if(got.begin(), got.end(), [](double x) { return x > 0; }), c.k);
    }
  }
  // Top-p keeps the smallest prefix reaching p: dropping its least likely token falls below p.
  const std::vector<double> full = Sampler({}, 1).distribution(z);
  std::vector<double> sorted = full;
  std::sort(sorted.rbegin(), sorted.rend());
  const std::vector<double> nucleus = Sampler({.top_p = 0.7f}, 1).distribution(z);
  const int64_t kept = std::count_if(nucleus.begin(), nucleus.end(), [](double x) { return x > 0; });
  const double with = std::accumulate(sorted.begin(), sorted.begin() + kept, 0.0);
  EXPECT_GE(with, 0.7 - 1e-7);
  EXPECT_LT(with - sorted[static_cast<size_t>(kept - 1)], 0.7);
}

// N seeded draws against the independent expected distribution. Under a correct sampler Pearson's
// X^2 over the kept tokens is chi-square with (kept - 1) degrees of freedom (every expected
// count here is >= 5, where the approximation is standard); a correct sampler exceeds the bound
// for one seed in a million (measured here: X^2 = 19.7, 2.2, 6.8, 2.9 against bounds 71.2, 37.5,
// 48.0, 41.9; against plain softmax: 703 to 27350). Tokens outside the kept set must never be drawn. Power: the same
// counts against the unrestricted softmax(z) (temperature, top-k and top-p ignored) must fail.
TEST(Sampler, EmpiricalDistributionMatchesChiSquare) {
  const std::vector<float> z = random_logits(24, 11, -1.f, 1.f);
  struct C {
    float T;
    int64_t k;
    float p;
  };
  constexpr int64_t N = 20000;
  for (const C c : {C{0.7f, 0, 1.f}, C{1.f, 6, 1.f}, C{1.3f, 0, 0.6f}, C{0.9f, 9, 0.85f}}) {
    SCOPED_TRACE("T " + std::to_string(c.T) + " k " + std::to_string(c.k) + " p " + std::to_string(c.p));
    const std::vector<double> want = expected_distribution(z, c.T, c.k, c.p);
    Sampler s({.temperature = c.T, .top_k = c.k, .top_p = c.p}, 2024);
    std::vector<int64_t> counts(z.size(), 0);
    for (int64_t n = 0; n < N; ++n) ++counts[static_cast<size_t>(s.sample(z))];
    int64_t kept = 0;
    for (size_t i = 0; i < z.size(); ++i) {
      if (want[i] == 0) {
        EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the kept set";
      }
      if (want[i] > 0) {
        ++kept;
        ASSERT_GE(N * want[i], 5.0) << "token " << i << ": expected count too small for X^2";
      }
    }
    ASSERT_GE(kept, 3);
    const double x2 = pearson(counts, want, N), bound = chi2_bound(kept - 1);
    EXPECT_LT(x2, bound) << "X^2 with " << kept - 1 << " degrees of freedom";
    const std::vector<double> plain = expected_distribution(z, 1.0, 0, 1.0);
    EXPECT_GT(pearson(counts, plain, N), chi2_bound(static_cast<int64_t>(z.size()) - 1))
        << "the test cannot tell this sampler from plain softmax sampling";
    EXPECT_EQ(s.rng().offset(), static_cast<uint64_t>(N));  // one Philox block per draw
  }
}

TEST(Sampler, SameSeedSameDrawsAndResumesFromOffset) {
  const std::vector<float> z = random_logits(30, 3);
  const SamplerConfig cfg{.temperature = 1.2f, .top_k = 20, .top_p = 0.95f};
  Sampler a(cfg, 77), b(cfg, 77), c(cfg, 78);
  std::vector<int32_t> da, db, dc;
  for (int n = 0; n < 200; ++n) {
    da.push_back(a.sample(z));
    db.push_back(b.sample(z));
    dc.push_back(c.sample(z));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
  Sampler resumed(cfg, 77, 150);  // (seed, offset) continues the stream
  for (int n = 150; n < 200; ++n) EXPECT_EQ(resumed.sample(z), da[static_cast<size_t>(n)]);
}

TEST(Sampler, MaskedTokensAreNeverDrawn) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> z = {-inf, 0.5f, -inf, 0.2f, -inf};
  for (const SamplerConfig cfg : {SamplerConfig{}, SamplerConfig{.top_k = 4}, SamplerConfig{.top_p = 0.99f}}) {
    Sampler s(cfg, 1);
    for (int n = 0; n < 500; ++n) {
      const int32_t t = s.sample(z);
      ASSERT_TRUE(t == 1 || t == 3) << t;
    }
  }
}

TEST(Sampler, RejectsBadInput) {
  EXPECT_ERROR_MENTIONS(Sampler({.temperature = -1.f}), "temperature");
  EXPECT_ERROR_MENTIONS(Sampler({.temperature = NAN}), "temperature");
  EXPECT_ERROR_MENTIONS(Sampler({.top_k = -2}), "top_k");
  EXPECT_ERROR_MENTIONS(Sampler({.top_p = 0.f}), "top_p");
  EXPECT_ERROR_MENTIONS(Sampler({.top_p = 1.5f}), "top_p");
  Sampler s({}, 1);
  EXPECT_ERROR_MENTIONS(s.sample(std::vector<float>{0.f, NAN}), "token 1");
  EXPECT_ERROR_MENTIONS(s.sample(std::vector<float>{0.f, std::numeric_limits<float>::infinity()}), "+inf");
  EXPECT_ERROR_MENTIONS(s.sample(std::vector<float>(3, -std::numeric_limits<float>::infinity())), "-inf");
  EXPECT_ERROR_MENTIONS(s.sample(std::vector<float>{}), "empty");
}

}  // namespace
}  // namespace foundry
