// TextCorpus: streams the documents of raw text files for preprocessing.
//
//   .jsonl / .json  one JSON object per line with a string field (default "text"), one
//                   document per line: the "loose JSON" that Megatron's
//                   tools/preprocess_data.py reads. Blank lines are skipped; a line that is
//                   not an object or lacks a string field is an error naming file:line.
//   .txt            the whole file is one document; or, with a document separator, the file is
//                   cut at every line equal to the separator (e.g. "%" for the fortune format),
//                   each document keeping its lines' newlines.
//
// Files are read in the order given; empty documents are skipped (and counted). Nothing is
// held in memory beyond the current document (and, for a .txt without separator, the file).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace foundry {

struct TextCorpusOptions {
  std::string json_key = "text";
  std::string document_separator;  // .txt only; empty: one document per file
};

class TextCorpus {
 public:
  // Checks that every file exists and has a supported extension (errors name the file).
  TextCorpus(std::vector<std::string> files, TextCorpusOptions opts = {});

  // The next non-empty document into `text`; false after the last one.
  bool next(std::string& text);
  // "path:line" where the last returned document starts.
  const std::string& location() const { return location_; }

  int64_t bytes_read() const { return bytes_read_; }
  int64_t total_bytes() const { return total_bytes_; }
  int64_t documents() const { return documents_; }
  int64_t empty_documents() const { return empty_documents_; }

 private:
  enum class Kind { jsonl, txt };
  bool open_next_file();
  bool next_in_file(std::string& text);  // may return an empty document

  std::vector<std::string> files_;
  std::vector<Kind> kinds_;
  TextCorpusOptions opts_;
  size_t file_ = 0;       // index of the next file to open
  bool open_ = false;
  std::ifstream in_;
  int64_t line_ = 0;      // lines read in the current file
  bool txt_done_ = false; // whole-file .txt already returned
  std::string line_buf_;
  std::string location_;
  int64_t bytes_read_ = 0, total_bytes_ = 0, documents_ = 0, empty_documents_ = 0;
};

}  // namespace foundry
