// Helpers for the tokenizer tests: the shared tokenizer files, the reference vectors, scratch
// directories, cached loads, and random UTF-8.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
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

// GPT-2's encoder.json + vocab.bpe copied into a directory under their canonical names. One
// directory per process: ctest runs tests of this program concurrently, and a copy being
// rewritten by one process must never be read by another.
inline std::string gpt2_files_dir() {
  static const std::string dir = [] {
    const auto d = std::filesystem::path(::testing::TempDir()) / "foundry_tok" /
                   ("gpt2_files." + std::to_string(::getpid()));
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

// English-like prose of about `bytes` bytes: Zipf-distributed common words in sentences with
// capitals, commas, contractions, numbers and paragraphs (deterministic for a seed).
inline std::string english_like_text(size_t bytes, uint32_t seed) {
  static const char* kWords[] = {
      "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are", "with",
      "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "hot", "word",
      "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your",
      "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many",
      "then", "them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him",
      "two", "has", "look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most",
      "people", "my", "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been",
      "now", "find", "any", "new", "work", "part", "take", "get", "place", "made", "live", "where", "after",
      "back", "little", "only", "round", "man", "year", "came", "show", "every", "good", "me", "give", "our",
      "under", "name", "very", "through", "just", "form", "sentence", "great", "think", "say", "help", "low",
      "line", "differ", "turn", "cause", "much", "mean", "before", "move", "right", "boy", "old", "too",
      "same", "tell", "does", "set", "three", "want", "air", "well", "also", "play", "small", "end", "put",
      "home", "read", "hand", "port", "large", "spell", "add", "even", "land", "here", "must", "big", "high",
      "such", "follow", "act", "why", "ask", "men", "change", "went", "light", "kind", "off", "need", "house",
      "picture", "try", "us", "again", "animal", "point", "mother", "world", "near", "build", "self", "earth",
      "father", "don't", "it's", "can't", "training", "model", "tokenizer", "gradient", "attention", "layer"};
  constexpr size_t n = std::size(kWords);
  std::mt19937 rng(seed);
  std::vector<double> weights(n);
  for (size_t i = 0; i < n; ++i) weights[i] = 1.0 / static_cast<double>(i + 1);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  std::string text;
  text.reserve(bytes + 256);
  while (text.size() < bytes) {
    const size_t words = 5 + rng() % 16;
    for (size_t w = 0; w < words; ++w) {
      std::string word = rng() % 40 == 0 ? std::to_string(rng() % 2000) : kWords[pick(rng)];
      if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
      text += word;
      if (w + 1 < words) text += rng() % 12 == 0 ? ", " : " ";
    }
    text += rng() % 10 == 0 ? "?" : ".";
    text += rng() % 6 == 0 ? "\n\n" : " ";
  }
  return text;
}

}  // namespace foundry::testing
