// Progress bar, ETA estimator and duration / rate formatting (see progress.h).
#include "foundry/train/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "foundry/core/check.h"

namespace foundry {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 9e15) return "?";
  const long long s = std::llround(seconds);
  const long long h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  if (h > 0) return fmt::format("{}h{:02d}m{:02d}s", h, m, sec);
  if (m > 0) return fmt::format("{}m{:02d}s", m, sec);
  return fmt::format("{}s", sec);
}

std::string format_si(double value) {
  if (!std::isfinite(value)) return "?";
  static constexpr const char* kSuffix[] = {"", "k", "M", "G", "T", "P"};
  size_t k = 0;
  double m = value;
  while (std::abs(m) >= 1000 && k + 1 < std::size(kSuffix)) {
    m /= 1000;
    ++k;
  }
  for (;;) {
    const int decimals = std::abs(m) < 10 ? 2 : std::abs(m) < 100 ? 1 : 0;
    std::string s = fmt::format("{:.{}f}", m, decimals);
    // 999.7 prints as "1000": move up a suffix instead (-> "1.00k").
    if (std::abs(std::stod(s)) >= 1000 && k + 1 < std::size(kSuffix)) {
      m /= 1000;
      ++k;
      continue;
    }
    return s + kSuffix[k];
  }
}

// ---- EtaEstimator --------------------------------------------------------------------------

EtaEstimator::EtaEstimator(int64_t total_steps, size_t window) : total_(total_steps), window_(std::max<size_t>(window, 2)) {}

void EtaEstimator::update(int64_t step, double elapsed_s) {
  if (!samples_.empty()) {
    FOUNDRY_CHECK(step >= samples_.back().first, "eta: step went back from {} to {}", samples_.back().first, step);
    if (step == samples_.back().first) {
      samples_.back().second = elapsed_s;
      return;
    }
  }
  samples_.emplace_back(step, elapsed_s);
  while (samples_.size() > window_) samples_.pop_front();
}

std::optional<double> EtaEstimator::seconds_per_step() const {
  if (samples_.size() < 2) return std::nullopt;
  const auto& [s0, t0] = samples_.front();
  const auto& [s1, t1] = samples_.back();
  return std::max(0.0, t1 - t0) / static_cast<double>(s1 - s0);
}

std::optional<double> EtaEstimator::eta_seconds() const {
  const auto sps = seconds_per_step();
  if (!sps) return std::nullopt;
  return static_cast<double>(std::max<int64_t>(0, total_ - samples_.back().first)) * *sps;
}

// ---- the bar line --------------------------------------------------------------------------

std::string render_progress_line(const ProgressState& s, int width) {
  const int total_digits = static_cast<int>(fmt::format("{}", std::max<int64_t>(s.total, 0)).size());
  const double frac = s.total > 0 ? std::clamp(static_cast<double>(s.step) / static_cast<double>(s.total), 0.0, 1.0) : 0.0;
  std::string text = fmt::format(" {:>{}}/{} {:3d}%", s.step, total_digits, s.total, static_cast<int>(frac * 100));
  if (s.loss) text += std::isfinite(*s.loss) ? fmt::format(" | loss {:.4f}", *s.loss) : fmt::format(" | loss {}", *s.loss);
  if (s.tokens_per_s) text += fmt::format(" | {} tok/s", format_si(*s.tokens_per_s));
  if (s.eta_s) text += fmt::format(" | ETA {}", format_duration(*s.eta_s));

  const int bar = std::max(10, width - static_cast<int>(text.size()) - 2);  // 2: the brackets
  const int filled = static_cast<int>(frac * bar);
  std::string line = "[";
  line.append(static_cast<size_t>(filled), '=');
  if (filled < bar) {
    line.push_back(s.step > 0 ? '>' : ' ');
    line.append(static_cast<size_t>(bar - filled - 1), ' ');
  }
  line += "]" + text;
  if (width > 0 && static_cast<int>(line.size()) > width) line.resize(static_cast<size_t>(width));
  return line;
}

// ---- ProgressBar ---------------------------------------------------------------------------

namespace {
double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
int terminal_width(std::FILE* out) {
  winsize ws{};
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}
}  // namespace

ProgressBar::ProgressBar(int64_t total_steps, std::FILE* out, Options options)
    : out_(out), opt_(std::move(options)), eta_(total_steps) {
  FOUNDRY_CHECK(out != nullptr, "progress: no output stream");
  FOUNDRY_CHECK(total_steps > 0, "progress: total steps must be positive, got {}", total_steps);
  enabled_ = opt_.enabled.value_or(isatty(fileno(out)) == 1);
  if (!opt_.clock) opt_.clock = steady_seconds;
  start_ = opt_.clock();
  state_.total = total_steps;
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t step, std::optional<double> loss, std::optional<double> tokens_per_s) {
  const double now = opt_.clock();
  eta_.update(step, now - start_);
  state_.step = step;
  if (loss) state_.loss = loss;
  if (tokens_per_s) state_.tokens_per_s = tokens_per_s;
  state_.eta_s = eta_.eta_seconds();
  if (!enabled_ || finished_) return;
  if (now - last_draw_ >= opt_.min_interval_s || step >= state_.total) {
    last_draw_ = now;
    draw();
  }
}

void ProgressBar::draw() {
  const int width = opt_.width > 0 ? opt_.width : terminal_width(out_) - 1;  // -1: never wrap
  // \r back to the line start, the line, then erase whatever a longer previous line left.
  const std::string line = render_progress_line(state_, width);
  std::fputc('\r', out_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fputs("\x1b[K", out_);
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::print_line(std::string_view line) {
  if (enabled_ && drawn_ && !finished_) {
    std::fputs("\r\x1b[K", out_);
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fputc('\n', out_);
    draw();
    return;
  }
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (finished_) return;
  if (enabled_ && state_.step > 0) {
    draw();
    std::fputc('\n', out_);
    std::fflush(out_);
  }
  finished_ = true;
}

}  // namespace foundry
