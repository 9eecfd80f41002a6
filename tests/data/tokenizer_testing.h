// Helpers for the tokenizer tests: the shared tokenizer files, the reference vectors, scratch
// directories, cached loads, and random UTF-8.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "foundry/data/tokenizer.h"

namespace foundry::testing {

// FOUNDRY_SHARED_DATA_DIR (the environment variable, else the macro) + "/tokenizers/" + file.
inline std::string tokenizer_data(const std::string& file) {
  const char* env = std::getenv("FOUNDRY_SHARED_DATA_DIR");
  return std::string(env && *env ? env : FOUNDRY_SHARED_DATA_DIR) + "/tokenizers/" + file;
}

// The four encodings of vectors.json and their .tiktoken files.
inline const std::vector<std::string>& encodings() {
  static const std::vector<std::string> names = {"gpt2", "cl100k_base", "o200k_base", "llama3"};
  return names;
}

struct Vector {
  std::string text;
  std::vector<int32_t> ids;
};
inline const std::vector<Vector>& vectors(const std::string& encoding) {
  static const auto all = [] {
    std::ifstream in(tokenizer_data("vectors.json"));
    const auto j = nlohmann::json::parse(in);
    std::map<std::string, std::vector<Vector>> m;
    for (const auto& [name, list] : j.items())
      for (const auto& v : list) m[name].push_back({v["text"].get<std::string>(), v["ids"].get<std::vector<int32_t>>()});
    return m;
  }();
  return all.at(encoding);
}

// A fresh, empty directory under the test temp dir.
inline std::string scratch_dir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "foundry_tok" /
                                    (std::string(info->test_suite_name()) + "." + info->name()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline void write_text(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// GPT-2's encoder.json + vocab.bpe copied into a directory under their canonical names.
inline std::string gpt2_files_dir() {
  static const std::string dir = [] {
    const auto d = std::filesystem::path(::testing::TempDir()) / "foundry_tok" / "gpt2_files";
    std::filesystem::create_directories(d);
    std::filesystem::copy_file(tokenizer_data("gpt2-encoder.json"), d / "encoder.json",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(tokenizer_data("gpt2-vocab.bpe"), d / "vocab.bpe",
                               std::filesystem::copy_options::overwrite_existing);
    return d.string();
  }();
  return dir;
}

// Tokenizer::load(path), loaded once per test program.
inline const Tokenizer& cached_tokenizer(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[path];
  if (!slot) slot = Tokenizer::load(path);
  return *slot;
}
inline const Tokenizer& tiktoken(const std::string& encoding) {
  return cached_tokenizer(tokenizer_data(encoding + ".tiktoken"));
}

inline void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Random valid UTF-8 of `n` code points, mixing ASCII letters and spaces, Unicode whitespace,
// combining marks, CJK, emoji and any other scalar value (never surrogates).
inline std::string random_utf8(std::mt19937& rng, size_t n) {
  static const uint32_t kSpecial[] = {' ', ' ', '\n', '\t', '\r', 0x85, 0xA0, 0x2009, 0x3000, 0x180E, 0xFEFF,
                                      0x200D, 0x0301, 0x0308, 0x20DD, '\'', 's', 'S', 0x17F, 0x130, '0', '9'};
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    uint32_t cp;
    switch (rng() % 8) {
      case 0: cp = kSpecial[rng() % std::size(kSpecial)]; break;
      case 1: cp = 0x4E00 + rng() % 0x5000; break;    // CJK
      case 2: cp = 0x1F300 + rng() % 0x700; break;    // emoji
      case 3: cp = 0x80 + rng() % 0x780; break;       // two-byte forms
      case 4: cp = rng() % 0x110000; break;           // anything
      default: cp = 0x20 + rng() % 0x5F; break;       // printable ASCII
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    append_utf8(s, cp);
  }
  return s;
}

}  // namespace foundry::testing
