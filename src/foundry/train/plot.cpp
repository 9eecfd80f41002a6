// Training curves as SVG (format and layout in plot.h). Ticks: the "nice numbers" rule of
// Heckbert, "Nice Numbers for Graph Labels" (Graphics Gems, 1990): steps of 1, 2 or 5 x 10^k.
#include "foundry/train/plot.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "foundry/core/check.h"
#include "foundry/train/expert_load.h"

extern char** environ;

namespace foundry {

namespace {

namespace fs = std::filesystem;

// ---- data ----------------------------------------------------------------------------------

struct Series {
  std::string field;  // metrics.jsonl field, also the polyline's class
  std::string label;  // legend text
  std::string color;
  std::vector<std::pair<double, double>> points;  // (step, value), increasing step
  std::string run_class;  // comparisons: "run-I", appended to the classes; empty for one run
  bool dashed = false;    // comparisons: valid_loss
};

Series collect(const std::vector<MetricsRecord>& records, const std::string& field, const std::string& label,
               const std::string& color) {
  std::map<int64_t, double> by_step;  // a repeated step keeps its last finite value
  for (const MetricsRecord& r : records)
    if (const auto v = r.get(field); v && std::isfinite(*v)) by_step[r.step] = *v;
  Series s{field, label, color, {}};
  for (const auto& [step, v] : by_step) s.points.emplace_back(static_cast<double>(step), v);
  return s;
}

// ---- axes ----------------------------------------------------------------------------------

struct Axis {
  double lo = 0, hi = 1;  // the range mapped onto the frame
  double step = 1;        // tick spacing
  std::vector<double> ticks;
};

double nice_step(double range, int target) {
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

// integer: steps on the x axis (ticks at whole numbers, no padding); otherwise 5% padding.
Axis make_axis(double lo, double hi, bool integer) {
  Axis a;
  if (!(hi > lo)) {
    const double pad = integer ? 1.0 : (lo == 0 ? 1.0 : std::abs(lo) * 0.1);
    lo -= pad;
    hi += pad;
  } else if (!integer) {
    const double pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
  }
  a.lo = lo;
  a.hi = hi;
  a.step = nice_step(hi - lo, 5);
  if (integer) a.step = std::max(a.step, 1.0);
  for (double i = std::ceil(lo / a.step - 1e-9); i <= std::floor(hi / a.step + 1e-9); ++i) a.ticks.push_back(i * a.step);
  return a;
}

// Tick labels: large values get an SI suffix (12k), small ones a common factor named in the axis
// label (x1e-4), so every label on an axis has the same form and a few characters.
struct TickFormat {
  double scale = 1;
  std::string suffix;  // on each label
  std::string factor;  // appended to the axis label
  int decimals = 0;
};

int decimals_for(double step) { return std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 12); }

TickFormat tick_format(const Axis& a) {
  TickFormat f;
  const double maxabs = std::max(std::abs(a.lo), std::abs(a.hi));
  if (maxabs >= 1e4) {
    static constexpr const char* kSuffix[] = {"", "k", "M", "G", "T"};
    const int k = std::clamp(static_cast<int>(std::floor(std::log10(maxabs) / 3)), 1, 4);
    f.scale = std::pow(1000.0, k);
    f.suffix = kSuffix[k];
  } else if (maxabs > 0 && maxabs < 1e-2) {
    const int e = static_cast<int>(std::floor(std::log10(maxabs)));
    f.scale = std::pow(10.0, e);
    f.factor = fmt::format(" (\u00d71e{})", e);
  }
  f.decimals = decimals_for(a.step / f.scale);
  return f;
}

std::string tick_label(double v, const Axis& a, const TickFormat& f) {
  if (std::abs(v) < a.step * 1e-6) v = 0;  // no "-0.0"
  return fmt::format("{:.{}f}{}", v / f.scale, f.decimals, f.suffix);
}

// ---- SVG -----------------------------------------------------------------------------------

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default:
        // Control characters are not allowed in XML 1.0; show them as '?'.
        out.push_back(static_cast<unsigned char>(c) < 0x20 && c != '\t' ? '?' : c);
    }
  }
  return out;
}

constexpr double kWidth = 960, kHeaderH = 44, kPanelH = 300;
constexpr double kLeft = 96, kRight = 36;       // plot area margins inside the page
constexpr double kPlotTop = 40, kPlotH = 206;   // plot area within a panel

struct Frame {
  double x0, y0, w, h;
  double px(const Axis& a, double x) const { return x0 + (x - a.lo) / (a.hi - a.lo) * w; }
  double py(const Axis& a, double y) const { return y0 + h - (y - a.lo) / (a.hi - a.lo) * h; }
};

// The panel title, centred above the frame.
void draw_title(std::string& out, const Frame& fr, double top, const std::string& title) {
  out += fmt::format("<text class=\"title\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"15\" "
                     "font-weight=\"bold\">{}</text>\n",
                     fr.x0 + fr.w / 2, top + 24, xml_escape(title));
}

// Step ticks below the frame with their labels, and vertical grid lines when `grid`.
void draw_x_ticks(std::string& out, const Frame& fr, const Axis& x, bool grid) {
  const TickFormat xf = tick_format(x);
  for (double t : x.ticks) {
    const double px = fr.px(x, t);
    if (grid)
      out += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#e3e3e3\"/>\n", px,
                         fr.y0, px, fr.y0 + fr.h);
    out += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#333\"/>\n", px,
                       fr.y0 + fr.h, px, fr.y0 + fr.h + 5);
    out += fmt::format("<text class=\"tick\" x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{}</text>\n", px,
                       fr.y0 + fr.h + 19, tick_label(t, x, xf));
  }
}

void draw_frame(std::string& out, const Frame& fr) {
  out += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"none\" "
                     "stroke=\"#333\"/>\n",
                     fr.x0, fr.y0, fr.w, fr.h);
}

void draw_x_label(std::string& out, const Frame& fr, const Axis& x) {
  out += fmt::format("<text class=\"axis-label\" x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">step{}</text>\n",
                     fr.x0 + fr.w / 2, fr.y0 + fr.h + 40, xml_escape(tick_format(x).factor));
}

// legend_box (comparisons): a white box behind the legend, which is as wide as its longest label.
void render_panel(std::string& out, double top, const std::string& title, const std::string& y_label,
                  const std::vector<Series>& series, const Axis& x, bool legend_box = false) {
  const Frame fr{kLeft, top + kPlotTop, kWidth - kLeft - kRight, kPlotH};
  out += fmt::format("<g class=\"panel\">\n");
  draw_title(out, fr, top, title);

  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (const auto& [step, v] : s.points) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  const bool empty = !(lo <= hi);
  const Axis y = empty ? make_axis(0, 1, false) : make_axis(lo, hi, false);
  const TickFormat yf = tick_format(y);

  // Grid and ticks (no y scale without data).
  for (double t : empty ? std::vector<double>{} : y.ticks) {
    const double py = fr.py(y, t);
    out += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#e3e3e3\"/>\n", fr.x0, py,
                       fr.x0 + fr.w, py);
    out += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#333\"/>\n", fr.x0 - 5, py,
                       fr.x0, py);
    out += fmt::format("<text class=\"tick\" x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"end\">{}</text>\n", fr.x0 - 8,
                         py + 4, tick_label(t, y, yf));
  }
  draw_x_ticks(out, fr, x, /*grid=*/true);
  draw_frame(out, fr);
  // Axis labels.
  draw_x_label(out, fr, x);
  out += fmt::format("<text class=\"axis-label\" x=\"{0:.2f}\" y=\"{1:.2f}\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 {0:.2f} {1:.2f})\">{2}</text>\n",
                     22.0, fr.y0 + fr.h / 2, xml_escape(y_label + (empty ? "" : yf.factor)));

  if (empty) {
    out += fmt::format("<text class=\"no-data\" x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\" fill=\"#888\" "
                       "font-size=\"14\">no data</text>\n",
                       fr.x0 + fr.w / 2, fr.y0 + fr.h / 2);
  }
  // Series: a polyline each, with a marker per point when they are few enough to tell apart.
  for (const Series& s : series) {
    if (s.points.empty()) continue;
    std::string pts;
    for (const auto& [step, v] : s.points) {
      if (!pts.empty()) pts.push_back(' ');
      pts += fmt::format("{:.2f},{:.2f}", fr.px(x, step), fr.py(y, v));
    }
    const std::string cls = s.run_class.empty() ? s.field : s.field + " " + s.run_class;
    out += fmt::format("<polyline class=\"series {}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" "
                       "stroke-linejoin=\"round\"{} points=\"{}\"/>\n",
                       cls, s.color, s.dashed ? " stroke-dasharray=\"6 4\"" : "", pts);
    if (s.points.size() <= 60) {
      out += fmt::format("<g class=\"markers {}\" fill=\"{}\">", cls, s.color);
      for (const auto& [step, v] : s.points)
        out += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"2.5\"/>", fr.px(x, step), fr.py(y, v));
      out += "</g>\n";
    }
  }
  // Legend (top right) when the panel has more than one series with data.
  const auto with_data = std::count_if(series.begin(), series.end(), [](const Series& s) { return !s.points.empty(); });
  if (with_data > 1) {
    double ly = fr.y0 + 16;
    size_t longest = 0;  // characters (about 7 px each at font-size 12)
    for (const Series& s : series)
      if (!s.points.empty()) longest = std::max(longest, s.label.size());
    const double lx = fr.x0 + fr.w - std::max(110.0, 44.0 + 7.0 * static_cast<double>(longest));
    if (legend_box)
      out += fmt::format("<rect class=\"legend-box\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" "
                         "height=\"{:.2f}\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n",
                         lx - 6, ly - 14, fr.x0 + fr.w - lx, 18.0 * static_cast<double>(with_data) + 2);
    for (const Series& s : series) {
      if (s.points.empty()) continue;
      out += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"{}\" "
                         "stroke-width=\"2.5\"{}/>\n",
                         lx, ly - 4, lx + 24, ly - 4, s.color, s.dashed ? " stroke-dasharray=\"6 4\"" : "");
      out += fmt::format("<text class=\"legend\" x=\"{:.2f}\" y=\"{:.2f}\">{}</text>\n", lx + 30, ly,
                         xml_escape(s.label));
      ly += 18;
    }
  }
  out += "</g>\n";
}

// ---- expert-load heatmap (MoE runs; grid and colour map in expert_load.h) --------------------

constexpr double kHeatRowMaxH = 18, kHeatMinH = 120, kHeatMaxH = 1000;  // plot area height bounds
constexpr double kHeatBelow = 114;  // x ticks, axis label, colour bar and caption below the frame
constexpr double kColorbarW = 240, kColorbarH = 10;

// Rows of at most 18 px; the plot area between 120 and 1000 px (rows >= 1 px up to 1000 rows).
double heat_plot_height(size_t rows) {
  return std::clamp(static_cast<double>(rows) * kHeatRowMaxH, kHeatMinH, kHeatMaxH);
}

double heat_panel_height(const ExpertLoadGrid& g) { return kPlotTop + heat_plot_height(g.rows.size()) + kHeatBelow; }

// Column c spans its steps' cells: each step reaches halfway to its neighbours (the first and
// last a half gap outwards), clipped to the x axis range.
std::pair<double, double> column_span(const ExpertLoadGrid& g, size_t c, const Axis& x) {
  const std::vector<int64_t>& s = g.steps;
  const size_t n = s.size(), b = g.cols[c].first, e = g.cols[c].second;
  const double half_first = n > 1 ? (s[1] - s[0]) / 2.0 : 1.0, half_last = n > 1 ? (s[n - 1] - s[n - 2]) / 2.0 : 1.0;
  const double lo = b > 0 ? (s[b - 1] + s[b]) / 2.0 : s[0] - half_first;
  const double hi = e < n ? (s[e - 1] + s[e]) / 2.0 : s[n - 1] + half_last;
  return {std::clamp(lo, x.lo, x.hi), std::clamp(hi, x.lo, x.hi)};
}

void render_heatmap(std::string& out, double top, const ExpertLoadGrid& g, const Axis& x) {
  const size_t rows = g.rows.size(), cols = g.cols.size();
  const Frame fr{kLeft, top + kPlotTop, kWidth - kLeft - kRight, heat_plot_height(rows)};
  const double row_h = fr.h / static_cast<double>(rows);
  out += "<g class=\"panel\">\n";
  draw_title(out, fr, top, "Expert load (tokens / mean)");
  // Grey shows through where a cell has no finite load.
  out += fmt::format("<rect class=\"missing\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" "
                     "fill=\"#e0e0e0\"/>\n",
                     fr.x0, fr.y0, fr.w, fr.h);
  out += "<g class=\"cells\" shape-rendering=\"crispEdges\">\n";
  std::vector<std::pair<double, double>> px(cols);  // pixel [left, right) of each column
  for (size_t c = 0; c < cols; ++c) {
    const auto [lo, hi] = column_span(g, c, x);
    px[c] = {fr.px(x, lo), fr.px(x, hi)};
  }
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) {
      const double v = g.at(r, c);
      if (std::isnan(v)) continue;
      out += fmt::format("<rect class=\"cell\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" "
                         "fill=\"{}\"/>\n",
                         px[c].first, fr.y0 + r * row_h, px[c].second - px[c].first, row_h, expert_load_color(v));
    }
  out += "</g>\n";
  // Layers: a separator above each but the first, a label at the middle of each (skipped where it
  // would overlap the previous one).
  double last_label = -INFINITY;
  for (size_t r0 = 0; r0 < rows;) {
    size_t r1 = r0;
    while (r1 < rows && g.rows[r1].layer == g.rows[r0].layer) ++r1;
    if (r0 > 0)
      out += fmt::format("<line class=\"layer-sep\" x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" "
                         "stroke=\"#333\" stroke-width=\"0.8\"/>\n",
                         fr.x0, fr.y0 + r0 * row_h, fr.x0 + fr.w, fr.y0 + r0 * row_h);
    const double mid = fr.y0 + (r0 + r1) / 2.0 * row_h;
    if (mid - last_label >= 13) {
      out += fmt::format("<text class=\"layer-label\" x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"end\" "
                         "font-size=\"11\">layer {}</text>\n",
                         fr.x0 - 6, mid + 4, g.rows[r0].layer);
      last_label = mid;
    }
    r0 = r1;
  }
  draw_x_ticks(out, fr, x, /*grid=*/false);
  draw_frame(out, fr);
  draw_x_label(out, fr, x);
  out += fmt::format("<text class=\"axis-label\" x=\"{0:.2f}\" y=\"{1:.2f}\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 {0:.2f} {1:.2f})\">MoE layer, expert</text>\n",
                     16.0, fr.y0 + fr.h / 2);

  // Colour bar: the map as a gradient through the same stops, ticks at every stop.
  const double cx = fr.x0, cy = fr.y0 + fr.h + 54;
  out += "<defs><linearGradient id=\"moe-load-cmap\" x1=\"0\" y1=\"0\" x2=\"1\" y2=\"0\">";
  for (const auto& [load, color] : expert_load_color_stops())
    out += fmt::format("<stop offset=\"{:g}\" stop-color=\"{}\"/>", load / 2, color);
  out += "</linearGradient></defs>\n";
  out += fmt::format("<rect class=\"colorbar\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" "
                     "fill=\"url(#moe-load-cmap)\" stroke=\"#333\" stroke-width=\"0.6\"/>\n",
                     cx, cy, kColorbarW, kColorbarH);
  for (const auto& [load, color] : expert_load_color_stops()) {
    const double tx = cx + load / 2 * kColorbarW;
    out += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#333\"/>\n", tx,
                       cy + kColorbarH, cy + kColorbarH + 4);
    out += fmt::format("<text class=\"colorbar-tick\" x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{}{:g}</text>\n",
                       tx, cy + kColorbarH + 17, load >= 2 ? "\u2265" : "", load);
  }
  out += fmt::format("<text class=\"colorbar-label\" x=\"{:.2f}\" y=\"{:.2f}\">tokens routed / mean tokens per expert "
                     "(linear, clamped at 2; grey: not logged)</text>\n",
                     cx + kColorbarW + 14, cy + kColorbarH - 1);
  const std::string row_note =
      g.experts_per_row == 1 ? fmt::format("{} rows: one per expert, by layer then expert", rows)
                             : fmt::format("{} rows: {} experts averaged per row (too many to draw one each)", rows,
                                           g.experts_per_row);
  const std::string col_note =
      g.steps_per_col == 1 ? fmt::format("{} columns: one per logged step", cols)
                           : fmt::format("{} columns: {} logged steps, up to {} averaged per column", cols,
                                         g.steps.size(), g.steps_per_col);
  out += fmt::format("<text class=\"caption\" x=\"{:.2f}\" y=\"{:.2f}\" fill=\"#555\">{}; {}</text>\n", cx,
                     cy + kColorbarH + 40, row_note, col_note);
  out += "</g>\n";
}

bool has_moe_series(const std::vector<MetricsRecord>& records) {
  for (const MetricsRecord& r : records)
    for (const char* f : {"moe_aux_loss", "moe_z_loss", "moe_max_load", "moe_dropped_frac"})
      if (r.get(f)) return true;
  return false;
}

// The document's start: the page, its title (left) and a summary (right).
void open_svg(std::string& out, double height, std::string_view title, const std::string& summary) {
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" "
                     "viewBox=\"0 0 {0} {1}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
                     "font-size=\"12\" fill=\"#222\">\n",
                     kWidth, height);
  out += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", kWidth, height);
  out += fmt::format("<text class=\"header\" x=\"{}\" y=\"28\" font-size=\"17\" font-weight=\"bold\">{}</text>\n",
                     kLeft, xml_escape(title));
  out += fmt::format("<text class=\"summary\" x=\"{}\" y=\"28\" text-anchor=\"end\" fill=\"#555\">{}</text>\n",
                     kWidth - kRight, summary);
}

// The first and last step of `records` (not empty).
std::pair<int64_t, int64_t> step_range(const std::vector<MetricsRecord>& records) {
  int64_t first = records.front().step, last = records.front().step;
  for (const MetricsRecord& r : records) {
    first = std::min(first, r.step);
    last = std::max(last, r.step);
  }
  return {first, last};
}

// The tab10 palette (matplotlib's default cycle): run i gets kRunColors[i % 10].
constexpr const char* kRunColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

}  // namespace

std::string render_metrics_svg(const std::vector<MetricsRecord>& records, std::string_view title) {
  FOUNDRY_CHECK(!records.empty(), "plot: no metrics records to draw");
  const auto [first, last] = step_range(records);
  const Axis x = make_axis(static_cast<double>(first), static_cast<double>(last), /*integer=*/true);

  // MoE runs: two more curve panels and the expert-load heatmap.
  const ExpertLoadGrid grid = collect_expert_load(records);
  const bool moe_curves = !grid.empty() || has_moe_series(records);
  const double height =
      kHeaderH + (moe_curves ? 5 : 3) * kPanelH + (grid.empty() ? 0.0 : heat_panel_height(grid));
  std::string out;
  open_svg(out, height, title, fmt::format("{} records, steps {}\u2013{}", records.size(), first, last));

  render_panel(out, kHeaderH, "Loss", "loss",
               {collect(records, "loss", "train", "#1f77b4"), collect(records, "valid_loss", "valid", "#d62728")}, x);
  render_panel(out, kHeaderH + kPanelH, "Learning rate", "learning rate", {collect(records, "lr", "lr", "#2ca02c")}, x);
  render_panel(out, kHeaderH + 2 * kPanelH, "Throughput (tokens/s)", "tokens/s",
               {collect(records, "tokens_per_s", "tokens/s", "#9467bd")}, x);
  if (moe_curves) {
    render_panel(out, kHeaderH + 3 * kPanelH, "MoE losses", "loss (coefficient-weighted)",
                 {collect(records, "moe_aux_loss", "aux loss", "#ff7f0e"),
                  collect(records, "moe_z_loss", "z-loss", "#8c564b")},
                 x);
    render_panel(out, kHeaderH + 4 * kPanelH, "Expert load balance", "max load, dropped fraction",
                 {collect(records, "moe_max_load", "max load", "#d62728"),
                  collect(records, "moe_dropped_frac", "dropped", "#7f7f7f")},
                 x);
  }
  if (!grid.empty()) render_heatmap(out, kHeaderH + 5 * kPanelH, grid, x);
  out += "</svg>\n";
  return out;
}

std::string render_comparison_svg(const std::vector<RunMetrics>& runs, std::string_view title, int64_t from_step) {
  FOUNDRY_CHECK(!runs.empty(), "plot: no runs to compare");
  // Each run from from_step on; the step axis spans them all.
  std::vector<std::vector<MetricsRecord>> kept(runs.size());
  int64_t first = std::numeric_limits<int64_t>::max(), last = std::numeric_limits<int64_t>::min();
  size_t total = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunMetrics& run = runs[i];
    FOUNDRY_CHECK(!run.records.empty(), "plot: run '{}' has no metrics records", run.label);
    for (const MetricsRecord& r : run.records)
      if (r.step >= from_step) kept[i].push_back(r);
    const auto [run_first, run_last] = step_range(run.records);
    FOUNDRY_CHECK(!kept[i].empty(), "plot: run '{}' has no records at --from-step {} or later (its steps are {}\u2013{})",
                  run.label, from_step, run_first, run_last);
    const auto [lo, hi] = step_range(kept[i]);
    first = std::min(first, lo);
    last = std::max(last, hi);
    total += kept[i].size();
  }
  const Axis x = make_axis(static_cast<double>(first), static_cast<double>(last), /*integer=*/true);

  // One series per run and panel, in run order; valid_loss dashed after the train losses.
  std::vector<Series> loss, valid, lr, tps;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string color = kRunColors[i % std::size(kRunColors)];
    const std::string& label = runs[i].label;
    const auto add = [&](std::vector<Series>& to, const char* field, const std::string& text, bool dashed) {
      to.push_back(collect(kept[i], field, text, color));
      to.back().run_class = fmt::format("run-{}", i);
      to.back().dashed = dashed;
    };
    add(loss, "loss", label, false);
    add(valid, "valid_loss", label + " (valid)", true);
    add(lr, "lr", label, false);
    add(tps, "tokens_per_s", label, false);
  }
  loss.insert(loss.end(), valid.begin(), valid.end());

  const double height = kHeaderH + 3 * kPanelH;
  std::string out;
  open_svg(out, height, title, fmt::format("{} runs, {} records, steps {}\u2013{}", runs.size(), total, first, last));
  render_panel(out, kHeaderH, "Loss", "loss", loss, x, /*legend_box=*/true);
  render_panel(out, kHeaderH + kPanelH, "Learning rate", "learning rate", lr, x, true);
  render_panel(out, kHeaderH + 2 * kPanelH, "Throughput (tokens/s)", "tokens/s", tps, x, true);
  out += "</svg>\n";
  return out;
}

// ---- PNG through an external converter -------------------------------------------------------

std::string find_on_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr || name.empty() || name.find('/') != std::string_view::npos) return "";
  std::string_view rest = path;
  while (true) {
    const size_t colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && access(candidate.c_str(), X_OK) == 0) return candidate.string();
    if (colon == std::string_view::npos) return "";
    rest.remove_prefix(colon + 1);
  }
}

namespace {

// Runs argv[0] (a full path) with stdout and stderr discarded; its exit status, or -1 when it
// could not start or ran past `timeout_s` (then it is killed).
int run_quietly(const std::vector<std::string>& args, double timeout_s) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool is_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  return f.read(magic, 8) && std::string_view(magic, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8);
}

}  // namespace

PngResult svg_to_png(const std::string& svg_path, const std::string& png_path) {
  PngResult result;
  std::vector<std::string> failures;
  for (const std::string tool : {"rsvg-convert", "convert"}) {
    const std::string exe = find_on_path(tool);
    if (exe.empty()) continue;
    result.tool = tool;
    const std::vector<std::string> args = tool == "rsvg-convert"
                                              ? std::vector<std::string>{exe, "-o", png_path, svg_path}
                                              : std::vector<std::string>{exe, svg_path, png_path};
    std::error_code ec;
    fs::remove(png_path, ec);
    const int rc = run_quietly(args, 120);
    if (rc == 0 && is_png(png_path)) {
      result.written = true;
      return result;
    }
    fs::remove(png_path, ec);  // never leave a partial or bogus file behind
    failures.push_back(rc == 0 ? fmt::format("{} wrote no PNG", tool)
                               : rc < 0 ? fmt::format("{} did not run to completion", tool)
                                        : fmt::format("{} failed (exit {})", tool, rc));
  }
  if (failures.empty()) {
    result.note = "neither rsvg-convert nor convert is on PATH";
  } else {
    result.note = failures.front();
    for (size_t i = 1; i < failures.size(); ++i) result.note += "; " + failures[i];
  }
  return result;
}

namespace {

struct LoadedRun {
  std::string metrics_path;
  std::string name;  // the run directory's name
  std::vector<MetricsRecord> records;
};

// `run`: a run directory (its metrics.jsonl) or the metrics file itself; at least one record.
LoadedRun load_run(const std::string& run) {
  std::error_code ec;
  const bool is_file = fs::is_regular_file(run, ec);
  FOUNDRY_CHECK(is_file || fs::is_directory(run, ec), "plot: '{}' is neither a run directory nor a metrics file", run);
  const fs::path metrics = is_file ? fs::path(run) : fs::path(run) / "metrics.jsonl";
  LoadedRun r{metrics.string(), "", read_metrics(metrics.string())};
  FOUNDRY_CHECK(!r.records.empty(), "plot: '{}' holds no records", r.metrics_path);
  const fs::path run_dir = fs::absolute(metrics, ec).parent_path();
  r.name = run_dir.filename().empty() ? run_dir.string() : run_dir.filename().string();
  return r;
}

// `output`, or (when empty) `fallback`; it must end in .svg.
fs::path svg_output(const std::string& output, const fs::path& fallback) {
  const fs::path svg = output.empty() ? fallback : fs::path(output);
  FOUNDRY_CHECK(svg.extension() == ".svg", "plot: the output '{}' must end in .svg", svg.string());
  return svg;
}

void write_text(const std::string& path, const std::string& doc) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  FOUNDRY_CHECK(f.good(), "plot: cannot write '{}'", path);
  f.write(doc.data(), static_cast<std::streamsize>(doc.size()));
  f.close();
  FOUNDRY_CHECK(f.good(), "plot: cannot write '{}'", path);
}

PlotResult plot_one(const std::string& run, const std::string& output, bool png, int64_t from_step) {
  PlotResult r;
  LoadedRun loaded = load_run(run);
  r.metrics_path = loaded.metrics_path;
  if (from_step != kNoFromStep) {
    const auto [first, last] = step_range(loaded.records);
    std::erase_if(loaded.records, [&](const MetricsRecord& m) { return m.step < from_step; });
    FOUNDRY_CHECK(!loaded.records.empty(), "plot: '{}' has no records at --from-step {} or later (its steps are {}\u2013{})",
                  r.metrics_path, from_step, first, last);
  }
  r.records = loaded.records.size();
  const fs::path svg = svg_output(output, fs::path(r.metrics_path).replace_extension(".svg"));
  r.svg_path = svg.string();
  write_text(r.svg_path, render_metrics_svg(loaded.records, "foundry run: " + loaded.name));
  r.png_path = fs::path(svg).replace_extension(".png").string();
  if (png) r.png = svg_to_png(r.svg_path, r.png_path);
  return r;
}

}  // namespace

PlotResult plot_run(const std::string& run, const std::string& output, bool png) {
  return plot_one(run, output, png, kNoFromStep);
}

PlotRunsResult plot_runs(const std::vector<std::string>& runs, const std::vector<std::string>& labels,
                         const std::string& output, bool png, int64_t from_step) {
  FOUNDRY_CHECK(!runs.empty(), "plot: no run given");
  PlotRunsResult r;
  if (runs.size() == 1) {
    FOUNDRY_CHECK(labels.empty(), "plot: --label names the runs of a comparison; give two or more runs (got one: '{}')",
                  runs[0]);
    const PlotResult one = plot_one(runs[0], output, png, from_step);
    r.metrics_paths = {one.metrics_path};
    r.labels = {""};
    r.records = {one.records};
    r.svg_path = one.svg_path;
    r.png_path = one.png_path;
    r.png = one.png;
    return r;
  }
  FOUNDRY_CHECK(labels.empty() || labels.size() == runs.size(),
                "plot: {} --label given for {} runs: give none (each run's directory name) or one per run",
                labels.size(), runs.size());
  FOUNDRY_CHECK(!output.empty(), "plot: comparing {} runs needs --output FILE.svg", runs.size());
  const fs::path svg = svg_output(output, "");
  std::vector<RunMetrics> loaded;
  for (size_t i = 0; i < runs.size(); ++i) {
    LoadedRun run = load_run(runs[i]);
    r.metrics_paths.push_back(run.metrics_path);
    r.labels.push_back(labels.empty() ? run.name : labels[i]);
    r.records.push_back(run.records.size());
    loaded.push_back(RunMetrics{r.labels.back(), std::move(run.records)});
  }
  std::string title = "foundry runs: " + r.labels[0];
  for (size_t i = 1; i < r.labels.size(); ++i) title += " vs " + r.labels[i];
  // Long labels: the legends name the runs, and the header must not run into the summary.
  if (title.size() > 60) title = fmt::format("foundry: {} runs compared", r.labels.size());
  const std::string doc = render_comparison_svg(loaded, title, from_step);
  r.svg_path = svg.string();
  write_text(r.svg_path, doc);
  r.png_path = fs::path(svg).replace_extension(".png").string();
  if (png) r.png = svg_to_png(r.svg_path, r.png_path);
  return r;
}

}  // namespace foundry
