#include "foundry/data/split.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "foundry/core/check.h"

namespace foundry {

std::string_view split_name(Split s) {
  switch (s) {
    case Split::train: return "train";
    case Split::valid: return "valid";
    case Split::test: return "test";
  }
  return "?";
}

std::array<double, 3> parse_split(std::string_view text) {
  std::vector<double> values;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ',' || c == '/' || c == ' ') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) ++j;
    FOUNDRY_CHECK(j > i, "split \"{}\": unexpected '{}' (expected e.g. \"969,30,1\")", text, c);
    const std::string number(text.substr(i, j - i));
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    FOUNDRY_CHECK(used == number.size() && std::isfinite(v), "split \"{}\": \"{}\" is not a number", text, number);
    values.push_back(v);
    i = j;
  }
  FOUNDRY_CHECK(!values.empty() && values.size() <= 3,
                "split \"{}\": expected one to three weights (train, valid, test), got {}", text, values.size());
  std::array<double, 3> w{0, 0, 0};
  double sum = 0;
  for (size_t k = 0; k < values.size(); ++k) {
    w[k] = values[k];
    sum += values[k];
  }
  FOUNDRY_CHECK(sum > 0, "split \"{}\": the weights sum to 0", text);
  for (double& x : w) x /= sum;
  return w;
}

std::array<IndexRange, 3> split_ranges(const std::array<double, 3>& weights, int64_t num_elements) {
  FOUNDRY_CHECK(num_elements >= 0, "split: number of elements must be >= 0, got {}", num_elements);
  std::array<IndexRange, 3> out{};
  double lo = 0;
  const double n = static_cast<double>(num_elements);
  for (int k = 0; k < 3; ++k) {
    FOUNDRY_CHECK(weights[static_cast<size_t>(k)] >= 0, "split: weight {} is negative", weights[static_cast<size_t>(k)]);
    const double hi = lo + weights[static_cast<size_t>(k)];
    if (hi != lo) {
      // std::nearbyint in the default rounding mode rounds half to even, like Python's round().
      // Clamped: cumulative float sums may exceed 1 by an ulp.
      const auto at = [&](double c) {
        return std::min(num_elements, static_cast<int64_t>(std::nearbyint(c * n)));
      };
      out[static_cast<size_t>(k)] = {at(lo), at(hi)};
    }
    lo = hi;
  }
  return out;
}

}  // namespace foundry
