#include "foundry/data/text_corpus.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iterator>

#include "foundry/core/check.h"

namespace foundry {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool blank(const std::string& s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

}  // namespace

TextCorpus::TextCorpus(std::vector<std::string> files, TextCorpusOptions opts)
    : files_(std::move(files)), opts_(std::move(opts)) {
  FOUNDRY_CHECK(!files_.empty(), "no input files");
  FOUNDRY_CHECK(!opts_.json_key.empty(), "the JSON key must not be empty");
  for (const std::string& f : files_) {
    std::error_code ec;
    FOUNDRY_CHECK(std::filesystem::is_regular_file(f, ec), "input {} does not exist or is not a file", f);
    if (ends_with(f, ".jsonl") || ends_with(f, ".json")) {
      kinds_.push_back(Kind::jsonl);
    } else if (ends_with(f, ".txt")) {
      kinds_.push_back(Kind::txt);
    } else {
      FOUNDRY_FAIL("input {}: unsupported file type (expected .txt, .jsonl or .json)", f);
    }
    total_bytes_ += static_cast<int64_t>(std::filesystem::file_size(f, ec));
  }
}

bool TextCorpus::open_next_file() {
  if (open_) in_.close();
  open_ = false;
  if (file_ >= files_.size()) return false;
  const std::string& f = files_[file_];
  in_.clear();
  in_.open(f, std::ios::binary);
  FOUNDRY_CHECK(in_.is_open(), "cannot open input {}", f);
  open_ = true;
  line_ = 0;
  txt_done_ = false;
  ++file_;
  return true;
}

bool TextCorpus::next_in_file(std::string& text) {
  const std::string& path = files_[file_ - 1];
  const Kind kind = kinds_[file_ - 1];
  text.clear();
  if (kind == Kind::jsonl) {
    while (std::getline(in_, line_buf_)) {
      ++line_;
      bytes_read_ += static_cast<int64_t>(line_buf_.size()) + 1;
      if (blank(line_buf_)) continue;
      location_ = fmt::format("{}:{}", path, line_);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line_buf_);
      } catch (const nlohmann::json::exception& e) {
        FOUNDRY_FAIL("{}: invalid JSON: {}", location_, e.what());
      }
      FOUNDRY_CHECK(j.is_object(), "{}: expected a JSON object with a \"{}\" field", location_, opts_.json_key);
      const auto it = j.find(opts_.json_key);
      FOUNDRY_CHECK(it != j.end(), "{}: no \"{}\" field", location_, opts_.json_key);
      FOUNDRY_CHECK(it->is_string(), "{}: field \"{}\" is not a string", location_, opts_.json_key);
      text = it->get<std::string>();
      return true;
    }
    FOUNDRY_CHECK(in_.eof(), "cannot read {} after line {}", path, line_);
    return false;
  }
  // .txt
  if (opts_.document_separator.empty()) {
    if (txt_done_) return false;
    txt_done_ = true;
    location_ = fmt::format("{}:1", path);
    text.assign(std::istreambuf_iterator<char>(in_), std::istreambuf_iterator<char>());
    FOUNDRY_CHECK(!in_.bad(), "cannot read {}", path);
    bytes_read_ += static_cast<int64_t>(text.size());
    return true;
  }
  bool any = false;
  while (std::getline(in_, line_buf_)) {
    ++line_;
    bytes_read_ += static_cast<int64_t>(line_buf_.size()) + 1;
    std::string_view content(line_buf_);
    if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
    if (content == opts_.document_separator) {
      if (!any) location_ = fmt::format("{}:{}", path, line_);
      return true;  // possibly empty
    }
    if (!any) location_ = fmt::format("{}:{}", path, line_);
    any = true;
    text += line_buf_;
    if (!in_.eof()) text += '\n';
  }
  FOUNDRY_CHECK(in_.eof(), "cannot read {} after line {}", path, line_);
  return any;
}

bool TextCorpus::next(std::string& text) {
  while (true) {
    if (!open_ && !open_next_file()) return false;
    if (next_in_file(text)) {
      if (text.empty()) {
        ++empty_documents_;
        continue;
      }
      ++documents_;
      return true;
    }
    if (!open_next_file()) return false;
  }
}

}  // namespace foundry
