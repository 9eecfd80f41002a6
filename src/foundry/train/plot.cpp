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

void render_panel(std::string& out, double top, const std::string& title, const std::string& y_label,
                  const std::vector<Series>& series, const Axis& x) {
  const Frame fr{kLeft, top + kPlotTop, kWidth - kLeft - kRight, kPlotH};
  out += fmt::format("<g class=\"panel\">\n");
  out += fmt::format("<text class=\"title\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"15\" "
                     "font-weight=\"bold\">{}</text>\n",
                     fr.x0 + fr.w / 2, top + 24, xml_escape(title));

  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (const auto& [step, v] : s.points) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  const bool empty = !(lo <= hi);
  const Axis y = empty ? make_axis(0, 1, false) : make_axis(lo, hi, false);
  const TickFormat xf = tick_format(x), yf = tick_format(y);

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
  for (double t : x.ticks) {
    const double px = fr.px(x, t);
    out += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#e3e3e3\"/>\n", px, fr.y0,
                       px, fr.y0 + fr.h);
    out += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#333\"/>\n", px,
                       fr.y0 + fr.h, px, fr.y0 + fr.h + 5);
    out += fmt::format("<text class=\"tick\" x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{}</text>\n", px,
                       fr.y0 + fr.h + 19, tick_label(t, x, xf));
  }
  out += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"none\" "
                     "stroke=\"#333\"/>\n",
                     fr.x0, fr.y0, fr.w, fr.h);
  // Axis labels.
  out += fmt::format("<text class=\"axis-label\" x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">step{}</text>\n",
                     fr.x0 + fr.w / 2, fr.y0 + fr.h + 40, xml_escape(xf.factor));
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
    out += fmt::format("<polyline class=\"series {}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" "
                       "stroke-linejoin=\"round\" points=\"{}\"/>\n",
                       s.field, s.color, pts);
    if (s.points.size() <= 60) {
      out += fmt::format("<g class=\"markers {}\" fill=\"{}\">", s.field, s.color);
      for (const auto& [step, v] : s.points)
        out += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"2.5\"/>", fr.px(x, step), fr.py(y, v));
      out += "</g>\n";
    }
  }
  // Legend (top right) when the panel has more than one series with data.
  const auto with_data = std::count_if(series.begin(), series.end(), [](const Series& s) { return !s.points.empty(); });
  if (with_data > 1) {
    double ly = fr.y0 + 16;
    for (const Series& s : series) {
      if (s.points.empty()) continue;
      const double lx = fr.x0 + fr.w - 110;
      out += fmt::format("<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"{}\" "
                         "stroke-width=\"2.5\"/>\n",
                         lx, ly - 4, lx + 24, ly - 4, s.color);
      out += fmt::format("<text class=\"legend\" x=\"{:.2f}\" y=\"{:.2f}\">{}</text>\n", lx + 30, ly,
                         xml_escape(s.label));
      ly += 18;
    }
  }
  out += "</g>\n";
}

}  // namespace

std::string render_metrics_svg(const std::vector<MetricsRecord>& records, std::string_view title) {
  FOUNDRY_CHECK(!records.empty(), "plot: no metrics records to draw");
  int64_t first = records.front().step, last = records.front().step;
  for (const MetricsRecord& r : records) {
    first = std::min(first, r.step);
    last = std::max(last, r.step);
  }
  const Axis x = make_axis(static_cast<double>(first), static_cast<double>(last), /*integer=*/true);

  const double height = kHeaderH + 3 * kPanelH;
  std::string out;
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" "
                     "viewBox=\"0 0 {0} {1}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
                     "font-size=\"12\" fill=\"#222\">\n",
                     kWidth, height);
  out += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", kWidth, height);
  out += fmt::format("<text class=\"header\" x=\"{}\" y=\"28\" font-size=\"17\" font-weight=\"bold\">{}</text>\n",
                     kLeft, xml_escape(title));
  out += fmt::format("<text class=\"summary\" x=\"{}\" y=\"28\" text-anchor=\"end\" fill=\"#555\">{} records, "
                     "steps {}\u2013{}</text>\n",
                     kWidth - kRight, records.size(), first, last);

  render_panel(out, kHeaderH, "Loss", "loss",
               {collect(records, "loss", "train", "#1f77b4"), collect(records, "valid_loss", "valid", "#d62728")}, x);
  render_panel(out, kHeaderH + kPanelH, "Learning rate", "learning rate", {collect(records, "lr", "lr", "#2ca02c")}, x);
  render_panel(out, kHeaderH + 2 * kPanelH, "Throughput (tokens/s)", "tokens/s",
               {collect(records, "tokens_per_s", "tokens/s", "#9467bd")}, x);
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

PlotResult plot_run(const std::string& run, const std::string& output, bool png) {
  PlotResult r;
  std::error_code ec;
  const bool is_file = fs::is_regular_file(run, ec);
  FOUNDRY_CHECK(is_file || fs::is_directory(run, ec), "plot: '{}' is neither a run directory nor a metrics file", run);
  const fs::path metrics = is_file ? fs::path(run) : fs::path(run) / "metrics.jsonl";
  r.metrics_path = metrics.string();
  const std::vector<MetricsRecord> records = read_metrics(r.metrics_path);
  FOUNDRY_CHECK(!records.empty(), "plot: '{}' holds no records", r.metrics_path);
  r.records = records.size();

  fs::path svg = output.empty() ? fs::path(metrics).replace_extension(".svg") : fs::path(output);
  FOUNDRY_CHECK(svg.extension() == ".svg", "plot: the output '{}' must end in .svg", svg.string());
  r.svg_path = svg.string();
  // The title: the run directory's name.
  fs::path run_dir = fs::absolute(metrics, ec).parent_path();
  const std::string title = "foundry run: " + (run_dir.filename().empty() ? run_dir.string() : run_dir.filename().string());
  const std::string doc = render_metrics_svg(records, title);
  {
    std::ofstream f(r.svg_path, std::ios::binary | std::ios::trunc);
    FOUNDRY_CHECK(f.good(), "plot: cannot write '{}'", r.svg_path);
    f.write(doc.data(), static_cast<std::streamsize>(doc.size()));
    f.close();
    FOUNDRY_CHECK(f.good(), "plot: cannot write '{}'", r.svg_path);
  }
  r.png_path = fs::path(svg).replace_extension(".png").string();
  if (png) r.png = svg_to_png(r.svg_path, r.png_path);
  return r;
}

}  // namespace foundry
