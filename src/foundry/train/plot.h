// foundry plot: training curves from a run's metrics.jsonl (train/metrics_log.h) as one
// self-contained SVG 1.1 file (https://www.w3.org/TR/SVG11/) with three stacked panels:
//   "Loss"                   loss (train) and valid_loss (when present) vs step
//   "Learning rate"          lr vs step
//   "Throughput (tokens/s)"  tokens_per_s vs step
// and, for MoE runs (records with moe_load.L.E fields or the MoE curves; train/expert_load.h):
//   "MoE losses"             moe_aux_loss and moe_z_loss vs step
//   "Expert load balance"    moe_max_load and moe_dropped_frac vs step
//   "Expert load (tokens / mean)"  (only with moe_load.L.E fields) a heatmap: one row per (layer,
//                            expert), layer then expert, a label per layer and a line between
//                            layers; one column per logged step on the shared step axis; each
//                            <rect class="cell"> coloured by expert_load_color (blue 0, white 1,
//                            red >= 2, linear); a colour bar and a caption saying how the grid was
//                            binned (at most 1000 rows, 400 columns, 100k cells; rows 1..18 px, the
//                            plot area 120..1000 px tall).
// Each panel has a frame, 1-2-5 "nice" ticks with grid lines and labels, axis labels and one
// <polyline class="series NAME"> per series with a point for every distinct step that has a
// finite value (a step logged twice, e.g. by a resumed run, keeps its last record). A PNG is
// written next to the SVG when rsvg-convert (librsvg) or ImageMagick's convert is on PATH.
//
// Comparing runs (render_comparison_svg, plot_runs): the three curve panels on one shared step
// axis with one series per run and panel, coloured per run (run i: the i-th colour of the tab10
// palette, cycled), a legend naming each run by its label, valid_loss dashed in the run's colour:
//   <polyline class="series loss run-0">, <polyline class="series valid_loss run-0"
//   stroke-dasharray="6 4">, <polyline class="series lr run-1">, ...
// and <text class="legend"> entries. from_step drops earlier records of every run (to show a
// continuation from its start). No MoE panels: each run's own plot has them.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/train/metrics_log.h"

namespace foundry {

// The SVG document for `records`; `title` (e.g. the run directory's name) heads the page.
// Missing or non-finite values are skipped; a panel without data says "no data".
std::string render_metrics_svg(const std::vector<MetricsRecord>& records, std::string_view title);

// Looks `name` up in the directories of $PATH; "" when absent.
std::string find_on_path(std::string_view name);

struct PngResult {
  bool written = false;
  std::string tool;  // "rsvg-convert" or "convert" (the tool used, or the last one tried)
  std::string note;  // why no PNG was written, when not written
};
// Converts svg_path to png_path with the first converter on PATH that succeeds (rsvg-convert,
// then convert). Never throws for a missing or failing converter: the result says what happened.
PngResult svg_to_png(const std::string& svg_path, const std::string& png_path);

struct PlotResult {
  std::string metrics_path;
  std::string svg_path;
  std::string png_path;  // where the PNG went (or would have gone)
  size_t records = 0;
  PngResult png;
};

// Reads RUN_DIR/metrics.jsonl (or `run`, when it names a file) and writes the SVG to `output`
// (default: metrics.svg beside the metrics file), plus the PNG (same name, .png) when `png`.
PlotResult plot_run(const std::string& run, const std::string& output = "", bool png = true);

// ---- several runs in one figure --------------------------------------------------------------

constexpr int64_t kNoFromStep = std::numeric_limits<int64_t>::min();

struct RunMetrics {
  std::string label;                    // legend text
  std::vector<MetricsRecord> records;  // the run's records, any order
};

// The comparison SVG of `runs` (at least one); only records with step >= from_step are drawn.
// A run left without records is an error naming its label and from_step.
std::string render_comparison_svg(const std::vector<RunMetrics>& runs, std::string_view title,
                                  int64_t from_step = kNoFromStep);

struct PlotRunsResult {
  std::vector<std::string> metrics_paths;  // per run
  std::vector<std::string> labels;         // per run
  std::vector<size_t> records;             // per run, before from_step
  std::string svg_path;
  std::string png_path;
  PngResult png;
};

// foundry plot RUN [RUN ...]: one run (without labels) is plot_run with the records from
// from_step on; two or more write render_comparison_svg to `output`, which is then required.
// labels: none (each run's directory name) or one per run. A run is a directory holding
// metrics.jsonl or the metrics file itself.
PlotRunsResult plot_runs(const std::vector<std::string>& runs, const std::vector<std::string>& labels,
                         const std::string& output, bool png = true, int64_t from_step = kNoFromStep);

}  // namespace foundry
