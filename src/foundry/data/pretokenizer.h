// Pre-tokenization: splitting text into the pieces that byte-pair encoding sees, with the regexes
// of tiktoken (`pat_str`, Rust regex syntax) and Hugging Face tokenizers' Split / ByteLevel
// pre-tokenizers, run by PCRE2 (JIT, UTF and Unicode-property mode).
//
// Semantics: each pattern splits like Hugging Face's Split(behavior="Isolated"): every match is a
// piece and so is any text between matches, so no byte is ever dropped. A Sequence of patterns
// splits the pieces of the previous one. For tiktoken's patterns, which match every character,
// this is exactly tiktoken's `regex.find_iter`.
//
// Rust's `\s` is Unicode's White_Space property; PCRE2's differs by release (U+0085, U+180E), so
// `\s` and `\S` are rewritten to that explicit set before compiling (translate_pattern).
// Bytes that are not well-formed UTF-8 become one-byte pieces of their own (the valid text around
// them is split as usual), so any byte string splits losslessly.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace foundry {

// Named patterns: "gpt2" (r50k / p50k, GPT-2's encoder.py and ByteLevel(use_regex=true)),
// "cl100k", "o200k" and "llama3" (Llama 3's tokenizer.model / tokenizer.json Split).
std::string pretokenizer_pattern(std::string_view name);  // throws for an unknown name

// Rust-syntax `\s` / `\S` -> PCRE2 classes of the White_Space code points; other syntax unchanged.
std::string translate_pattern(std::string_view pattern);

class Pretokenizer {
 public:
  // Compiles each pattern (Rust / Oniguruma syntax as used by tiktoken and tokenizer.json);
  // a pattern PCRE2 rejects is a foundry::Error quoting it and the offset of the problem.
  // With no pattern, each run of valid UTF-8 is one piece.
  explicit Pretokenizer(std::vector<std::string> patterns);
  ~Pretokenizer();
  Pretokenizer(Pretokenizer&&) noexcept;
  Pretokenizer& operator=(Pretokenizer&&) noexcept;

  // Appends the pieces of `text` (views into it, in order, concatenating to `text`) to `pieces`.
  // Thread-safe: any number of threads may split with one Pretokenizer.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  struct Regex;
  void split_valid(std::string_view text, size_t level, std::vector<std::string_view>& pieces) const;
  std::vector<std::string> patterns_;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace foundry
