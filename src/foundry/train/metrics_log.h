// metrics.jsonl: the run's metrics as JSON Lines (https://jsonlines.org), one object per record,
// appended and flushed line by line so a crash loses at most the line being written and a
// reader (foundry plot, jq, pandas.read_json(lines=True)) can follow a run in progress:
//   {"step": 10, "loss": 3.2, "lr": 0.001, "grad_norm": 0.5, "tokens_per_s": 1234.5, "elapsed_s": 12.3}
// "step" (an integer) is always first; every other field is a number, written with the shortest
// decimal that reads back to the same double. A non-finite value (NaN, ±Inf) has no JSON form and
// is written as null, which reads back as NaN. Records need not share fields (a validation record
// may hold only "step" and "valid_loss").
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace foundry {

struct MetricsRecord {
  int64_t step = 0;
  std::vector<std::pair<std::string, double>> fields;  // in the order they are written

  // Sets a field (replacing one of the same name); "step" is not a field name.
  MetricsRecord& set(std::string_view name, double value);
  // The field's value, nullopt when the record lacks it (NaN when it was written as null).
  std::optional<double> get(std::string_view name) const;
};

// Append-only writer. Opening an existing file appends to it (a resumed run continues its log).
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);  // creates missing parent directories
  void append(const MetricsRecord& record);       // one line, flushed before returning
  const std::string& path() const { return path_; }

 private:
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;
};

// One record as its JSON line (no trailing newline).
std::string metrics_to_json(const MetricsRecord& record);

// Reads every record of a metrics.jsonl file in file order. Blank lines are skipped; fields that
// are not numbers (strings, booleans, nested objects) are ignored. A missing file, malformed
// JSON, a line that is not an object, or a missing / non-integer "step" is an error naming
// path:line.
std::vector<MetricsRecord> read_metrics(const std::string& path);

}  // namespace foundry
