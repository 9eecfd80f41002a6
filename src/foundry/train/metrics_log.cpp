// metrics.jsonl writer and reader (format in metrics_log.h). JSON through nlohmann::json.
#include "foundry/train/metrics_log.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "foundry/core/check.h"

namespace foundry {

MetricsRecord& MetricsRecord::set(std::string_view name, double value) {
  FOUNDRY_CHECK(!name.empty() && name != "step", "metrics: invalid field name '{}' (step {})", name, step);
  for (auto& [n, v] : fields)
    if (n == name) {
      v = value;
      return *this;
    }
  fields.emplace_back(std::string(name), value);
  return *this;
}

std::optional<double> MetricsRecord::get(std::string_view name) const {
  for (const auto& [n, v] : fields)
    if (n == name) return v;
  return std::nullopt;
}

std::string metrics_to_json(const MetricsRecord& record) {
  nlohmann::ordered_json j;
  j["step"] = record.step;
  for (const auto& [name, value] : record.fields) {
    FOUNDRY_CHECK(name != "step" && !name.empty(), "metrics: invalid field name '{}' (step {})", name, record.step);
    if (std::isfinite(value)) j[name] = value;
    else j[name] = nullptr;
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);  // bad UTF-8 -> U+FFFD
}

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  FOUNDRY_CHECK(!ec, "metrics: cannot create directory '{}': {}", parent.string(), ec.message());
  file_.reset(std::fopen(path.c_str(), "a"));
  FOUNDRY_CHECK(file_ != nullptr, "metrics: cannot open '{}' for appending: {}", path, std::strerror(errno));
}

void MetricsLog::append(const MetricsRecord& record) {
  const std::string line = metrics_to_json(record) + "\n";
  FOUNDRY_CHECK(std::fwrite(line.data(), 1, line.size(), file_.get()) == line.size() && std::fflush(file_.get()) == 0,
                "metrics: cannot write '{}': {}", path_, std::strerror(errno));
}

std::vector<MetricsRecord> read_metrics(const std::string& path) {
  std::ifstream in(path);
  FOUNDRY_CHECK(in.good() && !std::filesystem::is_directory(path), "metrics: cannot read '{}'{}", path,
                std::filesystem::exists(path) ? "" : " (no such file)");
  std::vector<MetricsRecord> records;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::ordered_json j;  // ordered: fields keep their order in the line
    try {
      j = nlohmann::ordered_json::parse(line);
    } catch (const nlohmann::ordered_json::parse_error& e) {
      // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
      std::string what = e.what();
      if (const size_t at = what.find("] "); at != std::string::npos) what = what.substr(at + 2);
      if (const size_t at = what.find("line 1, column"); at != std::string::npos) what.erase(at, 8);  // one line
      FOUNDRY_FAIL("{}:{}: malformed JSON: {}", path, line_no, what);
    }
    FOUNDRY_CHECK(j.is_object(), "{}:{}: expected a JSON object, got {}", path, line_no, j.type_name());
    const auto step = j.find("step");
    FOUNDRY_CHECK(step != j.end(), "{}:{}: record has no \"step\"", path, line_no);
    MetricsRecord r;
    if (step->is_number_integer() &&
        (!step->is_number_unsigned() || step->get<uint64_t>() <= uint64_t{std::numeric_limits<int64_t>::max()})) {
      r.step = step->get<int64_t>();
    } else {
      const double s = step->is_number() ? step->get<double>() : std::numeric_limits<double>::quiet_NaN();
      FOUNDRY_CHECK(std::isfinite(s) && s == std::floor(s) && std::abs(s) < 9e15,
                    "{}:{}: \"step\" must be an integer, got {}", path, line_no, step->dump());
      r.step = static_cast<int64_t>(s);
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "step" || it.key().empty()) continue;
      if (it->is_number()) r.fields.emplace_back(it.key(), it->get<double>());
      else if (it->is_null()) r.fields.emplace_back(it.key(), std::numeric_limits<double>::quiet_NaN());
    }
    records.push_back(std::move(r));
  }
  FOUNDRY_CHECK(!in.bad(), "metrics: error reading '{}'", path);
  return records;
}

}  // namespace foundry
