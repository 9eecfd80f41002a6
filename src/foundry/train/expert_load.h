// Expert load of an MoE run, read back from metrics.jsonl (train/metrics_log.h) for the heatmap of
// `foundry plot`. At each log step of an MoE run the trainer writes, for every MoE decoder layer L
// and expert E,
//   moe_load.L.E = tokens routed to E over the logging interval / mean tokens per expert of layer L
// (1 = perfectly balanced, 0 = unused; the mean over a layer's experts is 1). Other MoE fields
// (moe_aux_loss, moe_z_loss, moe_max_load, moe_dropped_frac) are plain series, drawn as curves.
//
// The grid has one row per (layer, expert), ordered by layer then expert, and one column per
// logged step. Large grids are binned so the SVG stays small: consecutive experts of a layer share
// a row (the same group size in every layer: the smallest that fits, or up to twice that when it
// splits every layer evenly) and consecutive steps share a column (as evenly as they divide); a
// cell holds the mean of the finite loads it covers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/train/metrics_log.h"

namespace foundry {

struct ExpertLoadField {
  int64_t layer = 0;
  int64_t expert = 0;
};

// "moe_load.L.E" with L and E decimal digits only (at most 9 each) -> {L, E}; nullopt for any
// other name ("moe_load.x.y", "moe_load.1", "moe_load.1.2.3", "moe_load.-1.0", "moe_max_load").
std::optional<ExpertLoadField> parse_expert_load_field(std::string_view name);

// True when some record holds a well-formed moe_load.L.E field.
bool has_expert_load(const std::vector<MetricsRecord>& records);

struct ExpertLoadLimits {
  int max_rows = 1000;     // rows of the grid (experts are grouped beyond this)
  int max_cols = 400;      // columns (steps are grouped beyond this)
  int max_cells = 100000;  // rows x cols: fewer columns when there are many rows
};

struct ExpertLoadGrid {
  struct Row {
    int64_t layer = 0;
    int64_t first_expert = 0, last_expert = 0;  // the experts averaged in this row (inclusive)
  };
  std::vector<Row> rows;       // by layer, then expert
  std::vector<int64_t> steps;  // every distinct step with moe_load fields, increasing
  // cols[c] = [begin, end) into `steps`: the steps averaged in column c
  std::vector<std::pair<size_t, size_t>> cols;
  std::vector<double> load;    // [rows.size(), cols.size()] row-major; NaN where no finite value
  int64_t experts_per_row = 1;  // the expert group size (1 = one row per expert)
  size_t steps_per_col = 1;     // the most steps a column averages (1 = one column per step)

  bool empty() const { return rows.empty() || cols.empty(); }
  double at(size_t row, size_t col) const { return load[row * cols.size() + col]; }
};

// The grid of `records`. A step logged more than once (a resumed run) keeps its last record that
// has moe_load fields; malformed moe_load names are ignored. Empty when no record has the fields.
ExpertLoadGrid collect_expert_load(const std::vector<MetricsRecord>& records, const ExpertLoadLimits& limits = {});

// The heatmap's diverging colour map, linear in the load and centred at 1 (ColorBrewer RdBu stops):
//   0 -> #2166ac (blue), 0.5 -> #92c5de, 1 -> #ffffff (white), 1.5 -> #f4a582, >= 2 -> #b2182b (red)
// piecewise linear in sRGB between the stops, clamped to [0, 2]. As "#rrggbb"; NaN -> "".
std::string expert_load_color(double load);

// The colour map's stops as (load, "#rrggbb"), for a colour bar gradient.
std::vector<std::pair<double, std::string>> expert_load_color_stops();

}  // namespace foundry
