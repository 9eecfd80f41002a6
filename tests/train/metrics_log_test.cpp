#include "foundry/train/metrics_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;

std::string scratch(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("metrics_log_test_" + std::to_string(getpid()));
  fs::create_directories(d);
  fs::remove(d / name);
  return (d / name).string();
}
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(MetricsLog, WritesOneFlushedLinePerRecordAndReadsItBack) {
  const std::string path = scratch("run/sub/metrics.jsonl");  // parent directories are created
  MetricsLog log(path);
  MetricsRecord a{.step = 10};
  a.set("loss", 3.2).set("lr", 1e-3).set("grad_norm", 0.5).set("tokens_per_s", 1234.5).set("elapsed_s", 12.3);
  log.append(a);
  // Flushed at once: readable while the writer is open.
  EXPECT_EQ(slurp(path), "{\"step\":10,\"loss\":3.2,\"lr\":0.001,\"grad_norm\":0.5,\"tokens_per_s\":1234.5,"
                         "\"elapsed_s\":12.3}\n");
  MetricsRecord b{.step = 20};
  b.set("valid_loss", 2.9);
  log.append(b);
  MetricsRecord c{.step = 30};
  c.set("loss", std::nan("")).set("grad_norm", std::numeric_limits<double>::infinity())
      .set("tiny", 1.2345678901234567e-300).set("third", 1.0 / 3.0);
  log.append(c);

  const std::vector<MetricsRecord> r = read_metrics(path);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].step, 10);
  ASSERT_EQ(r[0].fields.size(), 5u);
  EXPECT_EQ(r[0].fields[0].first, "loss");  // file order is kept
  EXPECT_EQ(r[0].fields[4].first, "elapsed_s");
  EXPECT_EQ(r[0].get("loss"), 3.2);
  EXPECT_EQ(r[0].get("lr"), 1e-3);
  EXPECT_EQ(r[0].get("tokens_per_s"), 1234.5);
  EXPECT_FALSE(r[0].get("valid_loss").has_value());
  EXPECT_EQ(r[1].step, 20);
  EXPECT_EQ(r[1].get("valid_loss"), 2.9);
  EXPECT_FALSE(r[1].get("loss").has_value());
  // Non-finite values are written as null and read back as NaN; doubles round-trip exactly.
  EXPECT_NE(slurp(path).find("\"loss\":null,\"grad_norm\":null"), std::string::npos);
  EXPECT_TRUE(std::isnan(*r[2].get("loss")));
  EXPECT_TRUE(std::isnan(*r[2].get("grad_norm")));
  EXPECT_EQ(r[2].get("tiny"), 1.2345678901234567e-300);
  EXPECT_EQ(r[2].get("third"), 1.0 / 3.0);
}

TEST(MetricsLog, ReopeningAppends) {
  const std::string path = scratch("append.jsonl");
  MetricsLog(path).append(MetricsRecord{.step = 1, .fields = {{"loss", 5}}});
  MetricsLog(path).append(MetricsRecord{.step = 2, .fields = {{"loss", 4}}});
  const auto r = read_metrics(path);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].step, 2);
  EXPECT_EQ(r[1].get("loss"), 4.0);
}

TEST(MetricsLog, ReaderIsTolerantOfMissingAndNonNumericFields) {
  const std::string path = scratch("tolerant.jsonl");
  write_file(path,
             "{\"step\": 1, \"loss\": 3}\n"
             "\n"
             "   \r\n"
             "{\"loss\": 2.5, \"step\": 2.0, \"phase\": \"train\", \"ok\": true, \"nested\": {\"a\": 1}, \"lr\": 2e-4}\r\n"
             "{\"step\": 3}");  // no trailing newline
  const auto r = read_metrics(path);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].step, 2);
  ASSERT_EQ(r[1].fields.size(), 2u);
  EXPECT_EQ(r[1].get("loss"), 2.5);
  EXPECT_EQ(r[1].get("lr"), 2e-4);
  EXPECT_EQ(r[2].step, 3);
  EXPECT_TRUE(r[2].fields.empty());
}

TEST(MetricsLog, MalformedLinesNameFileAndLine) {
  const std::string path = scratch("bad.jsonl");
  std::vector<std::string> keep;  // EXPECT_ERROR_MENTIONS takes const char*
  auto at = [&](const char* rest) { return keep.emplace_back(path + rest).c_str(); };
  keep.reserve(16);
  write_file(path, "{\"step\": 1, \"loss\": 3}\n\n{\"step\": 2, \"loss\": 3.2x}\n");
  EXPECT_ERROR_MENTIONS(read_metrics(path), at(":3: malformed JSON"), "column");
  write_file(path, "{\"step\": 1, \"loss\": 3}\n{\"step\": 2, \"lo");  // truncated last line
  EXPECT_ERROR_MENTIONS(read_metrics(path), at(":2: malformed JSON"));
  write_file(path, "[1, 2]\n");
  EXPECT_ERROR_MENTIONS(read_metrics(path), at(":1: expected a JSON object, got array"));
  write_file(path, "{\"step\": 1}\n{\"loss\": 1}\n");
  EXPECT_ERROR_MENTIONS(read_metrics(path), at(":2: record has no \"step\""));
  write_file(path, "{\"step\": 1.5}\n");
  EXPECT_ERROR_MENTIONS(read_metrics(path), at(":1: \"step\" must be an integer, got 1.5"));
  write_file(path, "{\"step\": \"7\"}\n");
  EXPECT_ERROR_MENTIONS(read_metrics(path), at(":1: \"step\" must be an integer"));
  write_file(path, "{\"step\": 18446744073709551615}\n");
  EXPECT_ERROR_MENTIONS(read_metrics(path), at(":1: \"step\" must be an integer"));
  EXPECT_ERROR_MENTIONS(read_metrics(path + ".missing"), "metrics: cannot read", ".missing", "no such file");
  EXPECT_ERROR_MENTIONS(read_metrics(::testing::TempDir()), "metrics: cannot read");
}

TEST(MetricsLog, BadFieldNamesAndUnwritablePathsAreErrors) {
  MetricsRecord r{.step = 4};
  EXPECT_ERROR_MENTIONS(r.set("step", 1), "invalid field name 'step'");
  EXPECT_ERROR_MENTIONS(r.set("", 1), "invalid field name ''");
  const std::string file = scratch("not_a_dir");
  write_file(file, "x");
  EXPECT_ERROR_MENTIONS(MetricsLog(file + "/metrics.jsonl"), "metrics: cannot", "not_a_dir");
}

}  // namespace
}  // namespace foundry
