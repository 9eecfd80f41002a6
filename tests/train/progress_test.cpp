#include "foundry/train/progress.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "testing.h"

namespace foundry {
namespace {

TEST(Progress, FormatDuration) {
  EXPECT_EQ(format_duration(3723), "1h02m03s");
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(7.4), "7s");
  EXPECT_EQ(format_duration(59.6), "1m00s");  // rounds to whole seconds
  EXPECT_EQ(format_duration(123), "2m03s");
  EXPECT_EQ(format_duration(3600), "1h00m00s");
  EXPECT_EQ(format_duration(100 * 3600 + 5), "100h00m05s");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(std::nan("")), "?");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "?");
}

TEST(Progress, FormatSi) {
  EXPECT_EQ(format_si(0), "0.00");
  EXPECT_EQ(format_si(12.345), "12.3");
  EXPECT_EQ(format_si(999), "999");
  EXPECT_EQ(format_si(999.7), "1.00k");
  EXPECT_EQ(format_si(1234.5), "1.23k");
  EXPECT_EQ(format_si(45678), "45.7k");
  EXPECT_EQ(format_si(1.5e6), "1.50M");
  EXPECT_EQ(format_si(2.5e9), "2.50G");
  EXPECT_EQ(format_si(std::nan("")), "?");
}

TEST(Progress, EtaUsesAMovingWindow) {
  EtaEstimator eta(100, /*window=*/5);
  EXPECT_FALSE(eta.eta_seconds().has_value());
  eta.update(1, 10.0);  // a slow first step (warm-up)
  EXPECT_FALSE(eta.eta_seconds().has_value());
  for (int s = 2; s <= 5; ++s) eta.update(s, 10.0 + 0.5 * (s - 1));
  // Window [1..5]: (12 - 10) / 4 = 0.5 s per step.
  EXPECT_DOUBLE_EQ(*eta.seconds_per_step(), 0.5);
  EXPECT_DOUBLE_EQ(*eta.eta_seconds(), 95 * 0.5);
  // The rate changes to 2 s per step; once the window holds only new steps the ETA follows it.
  double t = 12.0;
  for (int s = 6; s <= 10; ++s) eta.update(s, t += 2.0);
  EXPECT_DOUBLE_EQ(*eta.seconds_per_step(), 2.0);
  EXPECT_DOUBLE_EQ(*eta.eta_seconds(), 90 * 2.0);
  // Updates may skip steps (one per log interval) and repeat the last one.
  eta.update(20, t += 20.0);
  eta.update(20, t += 1.0);
  EXPECT_DOUBLE_EQ(*eta.seconds_per_step(), (t - 16.0) / 13.0);  // window: steps 7, 8, 9, 10, 20
  eta.update(100, t);
  EXPECT_DOUBLE_EQ(*eta.eta_seconds(), 0.0);
  EXPECT_ERROR_MENTIONS(eta.update(50, t), "eta: step went back from 100 to 50");
}

TEST(Progress, RenderLine) {
  ProgressState s{.step = 450, .total = 1000, .loss = 3.214, .tokens_per_s = 12345, .eta_s = 65};
  const std::string text = "  450/1000  45% | loss 3.2140 | 12.3k tok/s | ETA 1m05s";
  const std::string line = render_progress_line(s, 80);
  ASSERT_EQ(line.size(), 80u);
  const int bar = 80 - static_cast<int>(text.size()) - 2;
  const int filled = static_cast<int>(0.45 * bar);
  EXPECT_EQ(line, "[" + std::string(filled, '=') + ">" + std::string(bar - filled - 1, ' ') + "]" + text);
  // Start and end; optional fields left out.
  EXPECT_EQ(render_progress_line({.step = 0, .total = 7}, 30), "[" + std::string(19, ' ') + "] 0/7   0%");
  EXPECT_EQ(render_progress_line({.step = 7, .total = 7, .loss = 1.0}, 40),
            "[" + std::string(15, '=') + "] 7/7 100% | loss 1.0000");
  EXPECT_EQ(render_progress_line({.step = 3, .total = 7, .loss = std::nan("")}, 0),
            "[====>     ] 3/7  42% | loss nan");
  // Narrow terminals: the bar keeps 10 cells and the line is cut at the width.
  EXPECT_EQ(render_progress_line(s, 40).size(), 40u);
  EXPECT_EQ(render_progress_line(s, 40).substr(0, 12), "[====>     ]");
}

// A ProgressBar over a temporary file, forced on, with a hand-driven clock.
struct Captured {
  std::FILE* f = std::tmpfile();
  double now = 0;
  ~Captured() { std::fclose(f); }
  std::string text() {
    std::fflush(f);
    std::rewind(f);
    std::string s;
    for (int c; (c = std::fgetc(f)) != EOF;) s.push_back(static_cast<char>(c));
    return s;
  }
  ProgressBar::Options options(bool enabled) {
    return {.enabled = enabled, .min_interval_s = 0.125, .clock = [this] { return now; }, .width = 100};
  }
};

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(Progress, BarRedrawsInPlaceAtMostEveryMinInterval) {
  Captured c;
  {
    ProgressBar bar(100, c.f, c.options(true));
    EXPECT_TRUE(bar.enabled());
    for (int step = 1; step <= 100; ++step) {
      c.now = step / 32.0;  // 32 steps per second (exact in binary): every fourth step is 0.125 s on
      bar.update(step, 5.0 - step * 0.01, 1000);
    }
    const std::string out = c.text();
    EXPECT_EQ(count(out, "\r"), 26);   // steps 1, 5, 9, ..., 97, then 100 (the last step)
    EXPECT_EQ(count(out, "\n"), 0);    // one line, redrawn in place
    EXPECT_EQ(count(out, "\x1b[K"), 26);
    EXPECT_NE(out.find("\r[====="), std::string::npos);
    EXPECT_NE(out.find("100/100 100% | loss 4.0000 | 1.00k tok/s | ETA 0s"), std::string::npos) << out;
  }
  EXPECT_EQ(c.text().back(), '\n');  // the destructor ends the line
}

TEST(Progress, LogLinesGoAboveTheBar) {
  Captured c;
  ProgressBar bar(10, c.f, c.options(true));
  bar.update(1, 3.0);
  bar.print_line("step 1 | loss 3.0");
  const std::string out = c.text();
  const size_t log = out.find("\r\x1b[Kstep 1 | loss 3.0\n");
  ASSERT_NE(log, std::string::npos) << out;
  EXPECT_NE(out.find("\r[", log), std::string::npos);  // the bar is drawn again below
  bar.finish();
  bar.finish();  // once only
  EXPECT_EQ(count(c.text(), "\n"), 2);
}

TEST(Progress, NotATerminalMeansNoBar) {
  Captured c;
  {
    ProgressBar bar(10, c.f);  // a temporary file is not a terminal
    EXPECT_FALSE(bar.enabled());
    for (int step = 1; step <= 10; ++step) bar.update(step, 1.0, 100);
    bar.print_line("plain line");
    EXPECT_TRUE(bar.eta().seconds_per_step().has_value());  // the ETA still runs for log lines
  }
  EXPECT_EQ(c.text(), "plain line\n");
}

TEST(Progress, BadArguments) {
  EXPECT_ERROR_MENTIONS(ProgressBar(0, stdout), "total steps must be positive, got 0");
}

}  // namespace
}  // namespace foundry
