// Progress display for training: on a terminal, one line redrawn in place (carriage return, at
// most ~10 times a second) with a bar, step/total, loss, tokens/s and the ETA; elsewhere (a file,
// a pipe, a batch job's log) nothing, and the trainer's plain log lines are the whole record.
// Also the helpers those log lines use: format_duration, format_si and the ETA estimator.
//
//   [===========>               ]  450/1000  45% | loss 3.2140 | 12.3k tok/s | ETA 1m05s
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace foundry {

// Whole seconds (rounded) as "1h02m03s", "2m03s" or "7s"; "?" for a negative or non-finite value.
std::string format_duration(double seconds);

// Three significant digits with an SI suffix: 999 -> "999", 1234.5 -> "1.23k", 45678 -> "45.7k",
// 1.5e6 -> "1.50M" (k M G T P); "?" when non-finite.
std::string format_si(double value);

// Estimates the time left from a moving window of the last `window` (step, elapsed) samples:
// seconds per step = (t_last - t_first) / (step_last - step_first) over the window, so a slow
// first step (allocation, warm-up) stops mattering once it has left the window.
class EtaEstimator {
 public:
  explicit EtaEstimator(int64_t total_steps, size_t window = 20);
  // Step `step` finished `elapsed_s` seconds after the start. Steps must not decrease.
  void update(int64_t step, double elapsed_s);
  std::optional<double> seconds_per_step() const;  // nullopt until two distinct steps were seen
  std::optional<double> eta_seconds() const;       // (total - last step) * seconds_per_step

 private:
  int64_t total_;
  size_t window_;
  std::deque<std::pair<int64_t, double>> samples_;
};

struct ProgressState {
  int64_t step = 0;
  int64_t total = 0;
  std::optional<double> loss;
  std::optional<double> tokens_per_s;
  std::optional<double> eta_s;
};

// The bar line, at most `width` characters (the bar shrinks first, then the tail is cut).
std::string render_progress_line(const ProgressState& s, int width);

class ProgressBar {
 public:
  struct Options {
    std::optional<bool> enabled;        // default: isatty(fileno(out))
    double min_interval_s = 0.1;        // redraw throttle (~10 Hz)
    std::function<double()> clock;      // seconds, monotonic; default std::chrono::steady_clock
    int width = 0;                      // 0: the terminal's width (80 when unknown)
  };
  explicit ProgressBar(int64_t total_steps, std::FILE* out = stdout) : ProgressBar(total_steps, out, Options{}) {}
  ProgressBar(int64_t total_steps, std::FILE* out, Options options);
  ~ProgressBar();  // finish()
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  bool enabled() const { return enabled_; }
  // Records that `step` finished (feeds the ETA) and redraws the line when the last redraw is at
  // least min_interval_s old or this is the last step. Does nothing when disabled.
  void update(int64_t step, std::optional<double> loss = std::nullopt,
              std::optional<double> tokens_per_s = std::nullopt);
  // Prints a log line: on a terminal it clears the bar, prints the line and redraws the bar
  // below it; otherwise it just prints the line. Either way followed by a newline and a flush.
  void print_line(std::string_view line);
  // Draws the final state and ends the bar's line (once; later calls do nothing).
  void finish();

  const EtaEstimator& eta() const { return eta_; }

 private:
  void draw();

  std::FILE* out_;
  bool enabled_;
  Options opt_;
  double start_;
  double last_draw_ = -1e300;
  bool drawn_ = false;  // the bar is on screen (its line is not ended)
  bool finished_ = false;
  ProgressState state_;
  EtaEstimator eta_;
};

}  // namespace foundry
