// Expert-load grid from metrics records and its colour map (definitions in expert_load.h).
#include "foundry/train/expert_load.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

namespace foundry {

namespace {

constexpr std::string_view kPrefix = "moe_load.";

// A non-negative decimal of 1..9 digits (no sign, no spaces), or nullopt.
std::optional<int64_t> parse_index(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool has_field(const MetricsRecord& r) {
  for (const auto& [name, v] : r.fields)
    if (parse_expert_load_field(name)) return true;
  return false;
}

}  // namespace

std::optional<ExpertLoadField> parse_expert_load_field(std::string_view name) {
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto layer = parse_index(name.substr(0, dot));
  const auto expert = parse_index(name.substr(dot + 1));  // a second '.' makes this fail
  if (!layer || !expert) return std::nullopt;
  return ExpertLoadField{*layer, *expert};
}

bool has_expert_load(const std::vector<MetricsRecord>& records) {
  return std::any_of(records.begin(), records.end(), has_field);
}

ExpertLoadGrid collect_expert_load(const std::vector<MetricsRecord>& records, const ExpertLoadLimits& limits) {
  ExpertLoadGrid g;
  // The record drawn for each step: its last one with moe_load fields.
  std::map<int64_t, size_t> record_of_step;
  for (size_t i = 0; i < records.size(); ++i)
    if (has_field(records[i])) record_of_step[records[i].step] = i;
  if (record_of_step.empty()) return g;

  // Layers and their experts, sorted.
  std::map<int64_t, std::vector<int64_t>> experts;  // layer -> experts
  for (const auto& [step, i] : record_of_step)
    for (const auto& [name, v] : records[i].fields)
      if (const auto f = parse_expert_load_field(name)) experts[f->layer].push_back(f->expert);
  size_t widest = 0;
  for (auto& [layer, e] : experts) {
    std::sort(e.begin(), e.end());
    e.erase(std::unique(e.begin(), e.end()), e.end());
    widest = std::max(widest, e.size());
  }

  // Rows: the smallest expert group size that fits max_rows (one row per layer at worst).
  auto rows_for = [&](size_t group) {
    size_t n = 0;
    for (const auto& [layer, e] : experts) n += (e.size() + group - 1) / group;
    return n;
  };
  size_t group = 1;
  while (group < widest && rows_for(group) > static_cast<size_t>(std::max(limits.max_rows, 1))) ++group;
  // Rather a group size that splits every layer evenly (128 experts: 8 per row, not 7), when one
  // is at most twice as large.
  for (size_t even = group; group > 1 && even <= 2 * group && even <= widest; ++even)
    if (std::all_of(experts.begin(), experts.end(), [&](const auto& kv) { return kv.second.size() % even == 0; })) {
      group = even;
      break;
    }
  g.experts_per_row = static_cast<int64_t>(group);
  std::map<std::pair<int64_t, int64_t>, size_t> row_of;  // (layer, expert) -> row
  for (const auto& [layer, e] : experts)
    for (size_t j = 0; j < e.size(); j += group) {
      const size_t end = std::min(e.size(), j + group);
      for (size_t k = j; k < end; ++k) row_of[{layer, e[k]}] = g.rows.size();
      g.rows.push_back({layer, e[j], e[end - 1]});
    }

  // Columns: consecutive steps, at most max_cols and max_cells / rows of them.
  for (const auto& [step, i] : record_of_step) g.steps.push_back(step);
  const size_t n = g.steps.size();
  const size_t cap = std::max<size_t>(
      1, std::min<size_t>(std::max(limits.max_cols, 1), std::max(limits.max_cells, 1) / g.rows.size()));
  const size_t ncols = std::min(n, cap);
  std::vector<size_t> col_of(n);
  for (size_t c = 0; c < ncols; ++c) {
    const size_t b = c * n / ncols, e = (c + 1) * n / ncols;
    g.cols.emplace_back(b, e);
    g.steps_per_col = std::max(g.steps_per_col, e - b);
    for (size_t s = b; s < e; ++s) col_of[s] = c;
  }

  // Cells: mean of the finite loads they cover.
  std::vector<double> sum(g.rows.size() * ncols, 0.0);
  std::vector<int64_t> count(sum.size(), 0);
  size_t s = 0;
  for (const auto& [step, i] : record_of_step) {
    for (const auto& [name, v] : records[i].fields) {
      const auto f = parse_expert_load_field(name);
      if (!f || !std::isfinite(v)) continue;
      const size_t cell = row_of.at({f->layer, f->expert}) * ncols + col_of[s];
      sum[cell] += v;
      count[cell] += 1;
    }
    ++s;
  }
  g.load.resize(sum.size());
  for (size_t k = 0; k < sum.size(); ++k)
    g.load[k] = count[k] > 0 ? sum[k] / static_cast<double>(count[k]) : std::numeric_limits<double>::quiet_NaN();
  return g;
}

namespace {

struct Stop {
  double load;
  int r, g, b;
};
constexpr Stop kStops[] = {{0.0, 0x21, 0x66, 0xac},
                           {0.5, 0x92, 0xc5, 0xde},
                           {1.0, 0xff, 0xff, 0xff},
                           {1.5, 0xf4, 0xa5, 0x82},
                           {2.0, 0xb2, 0x18, 0x2b}};

std::string hex(int r, int g, int b) { return fmt::format("#{:02x}{:02x}{:02x}", r, g, b); }

}  // namespace

std::string expert_load_color(double load) {
  if (std::isnan(load)) return "";
  load = std::clamp(load, kStops[0].load, std::end(kStops)[-1].load);
  size_t i = 0;
  while (i + 2 < std::size(kStops) && load > kStops[i + 1].load) ++i;
  const Stop& a = kStops[i];
  const Stop& b = kStops[i + 1];
  const double t = (load - a.load) / (b.load - a.load);
  auto mix = [t](int x, int y) { return static_cast<int>(std::lround(x + (y - x) * t)); };
  return hex(mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b));
}

std::vector<std::pair<double, std::string>> expert_load_color_stops() {
  std::vector<std::pair<double, std::string>> out;
  for (const Stop& s : kStops) out.emplace_back(s.load, hex(s.r, s.g, s.b));
  return out;
}

}  // namespace foundry
