// "Did you mean" for unknown config keys and names: the candidate at the smallest Levenshtein
// edit distance (insertions, deletions, substitutions each cost 1; one-row dynamic programme).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace foundry {

inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'PREFIXbest'?)" for the key of `candidates` (a map) closest to `key`; "" when empty.
template <class Map>
std::string did_you_mean(const std::string& key, const Map& candidates, const std::string& prefix = "") {
  std::string best;
  size_t best_d = ~size_t{0};
  for (const auto& [name, unused] : candidates) {
    const size_t d = edit_distance(key, name);
    if (d < best_d) best_d = d, best = name;
  }
  return best.empty() ? "" : fmt::format(" (did you mean '{}{}'?)", prefix, best);
}

}  // namespace foundry
