// Near-duplicate grouping: union-find over "fingerprint_distance <= max_distance", candidate pairs
// from all pairs or from exact multi-index hashing (bands); see the header for both and why.
#include "foundry/video/dedup.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <utility>

#include "foundry/core/check.h"

namespace foundry::video {
namespace {

constexpr size_t kAllPairsUpTo = 4096;  // CandidateSearch::automatic switches to banded above this

// Disjoint sets with path halving and union by size.
class UnionFind {
 public:
  explicit UnionFind(size_t n) : parent_(n), size_(n, 1) { std::iota(parent_.begin(), parent_.end(), 0); }
  int find(int i) {
    while (parent_[static_cast<size_t>(i)] != i) {
      parent_[static_cast<size_t>(i)] = parent_[static_cast<size_t>(parent_[static_cast<size_t>(i)])];
      i = parent_[static_cast<size_t>(i)];
    }
    return i;
  }
  void unite(int a, int b) {
    a = find(a), b = find(b);
    if (a == b) return;
    if (size_[static_cast<size_t>(a)] < size_[static_cast<size_t>(b)]) std::swap(a, b);
    parent_[static_cast<size_t>(b)] = a;
    size_[static_cast<size_t>(a)] += size_[static_cast<size_t>(b)];
  }

 private:
  std::vector<int> parent_;
  std::vector<int> size_;
};

struct Grouper {
  const std::vector<DedupItem>& items;
  double max_distance;
  UnionFind sets;
  int64_t compared = 0;

  // Joins a and b when they are near-duplicates; pairs already in one set are not compared.
  void consider(int a, int b) {
    if (sets.find(a) == sets.find(b)) return;
    ++compared;
    if (fingerprint_distance(items[static_cast<size_t>(a)].fingerprint, items[static_cast<size_t>(b)].fingerprint) <=
        max_distance)
      sets.unite(a, b);
  }
};

void all_pairs(Grouper& g) {
  const int n = static_cast<int>(g.items.size());
  for (int a = 0; a < n; ++a)
    for (int b = a + 1; b < n; ++b) g.consider(a, b);
}

// Exact multi-index hashing (header): r + 1 bands of the 64 bits, r = floor(max_distance); within
// each group of equal fingerprint length, items sharing (sample j, band b, band bits) are
// candidates; items of different lengths are compared all-pairs. Identical fingerprints are
// joined up front.
void banded(Grouper& g) {
  const int r = static_cast<int>(std::floor(g.max_distance));
  const int bands = r + 1;
  const auto hashes = [&](int i) -> const std::vector<uint64_t>& {
    return g.items[static_cast<size_t>(i)].fingerprint.hashes;
  };
  // Identical non-empty fingerprints are at distance 0 and have the same distance to everything
  // else: join them and band one representative each (keeps a bucket of many identical clips,
  // e.g. black frames, from costing n^2 per band).
  std::vector<int> order(g.items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return hashes(a) < hashes(b); });
  // Length classes: fingerprint length -> representatives.
  std::map<size_t, std::vector<int>> by_length;
  for (size_t s = 0; s < order.size();) {
    size_t e = s + 1;
    while (e < order.size() && hashes(order[e]) == hashes(order[s])) ++e;
    if (!hashes(order[s]).empty()) {  // empty ones are at distance 64 > max_distance from all
      for (size_t k = s + 1; k < e; ++k) g.sets.unite(order[s], order[k]);
      by_length[hashes(order[s]).size()].push_back(order[s]);
    }
    s = e;
  }

  // Band b: bits [b * 64 / bands, (b + 1) * 64 / bands) counted from the least significant bit.
  std::vector<uint64_t> masks(static_cast<size_t>(bands));
  for (int b = 0; b < bands; ++b) {
    const int lo = b * 64 / bands, hi = (b + 1) * 64 / bands;
    masks[static_cast<size_t>(b)] = hi - lo == 64 ? ~uint64_t{0} : ((uint64_t{1} << (hi - lo)) - 1) << lo;
  }
  // A pair sharing several buckets is a candidate once: in the first (sample, band) it shares.
  const auto shared_earlier = [&](int p, int q, size_t j, int b) {
    for (size_t jj = 0; jj <= j; ++jj) {
      const uint64_t x = hashes(p)[jj] ^ hashes(q)[jj];
      for (int bb = 0; bb < (jj == j ? b : bands); ++bb)
        if ((x & masks[static_cast<size_t>(bb)]) == 0) return true;
    }
    return false;
  };

  std::vector<std::pair<uint64_t, int>> keyed;  // (band bits, item)
  for (const auto& [length, members] : by_length) {
    for (size_t j = 0; j < length; ++j)
      for (int b = 0; b < bands; ++b) {
        keyed.clear();
        for (int i : members) keyed.emplace_back(hashes(i)[j] & masks[static_cast<size_t>(b)], i);
        std::sort(keyed.begin(), keyed.end());
        for (size_t s = 0; s < keyed.size();) {  // each run of equal band bits is one bucket
          size_t e = s + 1;
          while (e < keyed.size() && keyed[e].first == keyed[s].first) ++e;
          for (size_t p = s; p < e; ++p)
            for (size_t q = p + 1; q < e; ++q) {
              const int a = keyed[p].second, c = keyed[q].second;
              if (g.sets.find(a) != g.sets.find(c) && !shared_earlier(a, c, j, b)) g.consider(a, c);
            }
          s = e;
        }
      }
  }
  // Across lengths: all pairs.
  for (auto x = by_length.begin(); x != by_length.end(); ++x)
    for (auto y = std::next(x); y != by_length.end(); ++y)
      for (int a : x->second)
        for (int b : y->second) g.consider(a, b);
}

}  // namespace

DedupResult dedup_clips(const std::vector<DedupItem>& items, const DedupOptions& options) {
  FOUNDRY_CHECK(!std::isnan(options.max_distance), "dedup_clips: max_distance is NaN");
  for (size_t i = 0; i < items.size(); ++i)
    FOUNDRY_CHECK(!std::isnan(items[i].priority), "dedup_clips: item {} has priority NaN", i);
  const size_t n = items.size();
  Grouper grouper{items, options.max_distance, UnionFind(n)};

  CandidateSearch search = options.search;
  if (search == CandidateSearch::automatic)
    search = n <= kAllPairsUpTo ? CandidateSearch::all_pairs : CandidateSearch::banded;
  if (options.max_distance < 0) {
    // No pair is that close: every item is its own group.
  } else if (search == CandidateSearch::all_pairs || options.max_distance >= 64) {
    all_pairs(grouper);  // max_distance >= 64: every pair matches; bands would be empty
  } else {
    banded(grouper);
  }

  DedupResult result;
  result.group.assign(n, -1);
  result.keep.assign(n, false);
  result.kept_of.assign(n, -1);
  result.pairs_compared = grouper.compared;
  std::vector<int> group_of_root(n, -1), best_of_group;
  for (size_t i = 0; i < n; ++i) {
    const auto root = static_cast<size_t>(grouper.sets.find(static_cast<int>(i)));
    if (group_of_root[root] < 0) {
      group_of_root[root] = result.groups++;
      best_of_group.push_back(static_cast<int>(i));
    }
    const int g = group_of_root[root];
    result.group[i] = g;
    int& best = best_of_group[static_cast<size_t>(g)];
    if (items[i].priority > items[static_cast<size_t>(best)].priority) best = static_cast<int>(i);  // ties: lower index
  }
  for (size_t i = 0; i < n; ++i) {
    result.kept_of[i] = best_of_group[static_cast<size_t>(result.group[i])];
    result.keep[i] = result.kept_of[i] == static_cast<int>(i);
  }
  return result;
}

}  // namespace foundry::video
