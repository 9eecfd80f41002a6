// Helpers for the data tests: a byte-level tokenizer (ids 0..255 are the bytes, 256 is the
// end-of-document token), scratch paths unique per test, and whole-file byte I/O.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "foundry/core/check.h"
#include "foundry/data/indexed_dataset.h"
#include "foundry/data/tokenizer.h"

namespace foundry::testing {

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string decode(std::span<const int32_t> ids) const override {
    std::string s;
    for (int32_t id : ids)
      if (id < 256) s.push_back(static_cast<char>(id));
    return s;
  }
  std::vector<int32_t> encode_with_special(std::string_view text) const override {
    if (text == "<|endoftext|>") return {256};
    return encode(text);
  }
  int32_t special_token_id(std::string_view text) const override { return text == "<|endoftext|>" ? 256 : -1; }
  int64_t vocab_size() const override { return 257; }
  int32_t eod_id() const override { return 256; }
  std::string description() const override { return "bytes (test), 257 tokens"; }
  void save(const std::string&) const override { FOUNDRY_FAIL("ByteTokenizer: save is not used in tests"); }
};

// A fresh directory under the test temp dir, named after the running test.
inline std::string scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = ::testing::TempDir() + "foundry_data_" + info->test_suite_name() + "_" + info->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Writes documents (one sequence each) with foundry's writer.
inline void write_dataset(const std::string& prefix, const std::vector<std::vector<int32_t>>& docs,
                          IndexedDType dtype = IndexedDType::u16) {
  IndexedDatasetWriter w(prefix, dtype);
  for (const auto& d : docs) w.add_document(d);
  w.finalize();
}

}  // namespace foundry::testing
