// Byte-level BPE training (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with
// Subword Units"; the byte-level form of GPT-2, as Hugging Face tokenizers' BpeTrainer with a
// ByteLevel pre-tokenizer, src/models/bpe/trainer.rs).
//
// 1. Pre-tokenize the corpus (pretokenizer.h) and count each distinct piece ("word").
// 2. Start from the 256 single bytes (ids 0..255 = the byte values), every word a byte sequence.
// 3. Repeatedly merge the most frequent adjacent pair, counted over all words weighted by their
//    counts; ties go to the smaller (left id, right id). Pair counts are updated incrementally:
//    only the words holding the pair are rewritten, and a max-heap with lazily refreshed counts
//    finds the next pair, so a 4096-token vocabulary on a few MB of text takes seconds.
// 4. Stop at vocab_size tokens (special tokens included, appended after the learned ones) or
//    when no pair occurs min_frequency times.
//
// The result is deterministic (independent of the thread count and of the order texts are
// counted in) and is a merge-list BpeTokenizer that saves as tokenizer.json.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "foundry/data/bpe_tokenizer.h"

namespace foundry {

struct BpeTrainerOptions {
  int64_t vocab_size = 4096;  // learned tokens + 256 bytes + special tokens
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  std::string pattern = pretokenizer_pattern("llama3");  // pre-tokenization regex
  int64_t min_frequency = 2;  // a pair merges only if it occurs this often
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);

  // Counts the words of each text, in parallel over texts (OpenMP).
  void add_texts(std::span<const std::string> texts);
  // Counts the words of one text, cut into about 1 MiB chunks at line starts (where the standard
  // patterns always end a piece) that are counted in parallel.
  void add_text(std::string_view text);

  int64_t distinct_words() const { return static_cast<int64_t>(counts_.size()); }
  int64_t bytes_counted() const { return bytes_; }

  // Learns the merges from the words counted so far.
  std::unique_ptr<BpeTokenizer> train() const;

 private:
  void add_pieces(std::span<const std::string_view> texts);
  BpeTrainerOptions options_;
  Pretokenizer pretokenizer_;
  std::unordered_map<std::string, int64_t> counts_;
  int64_t bytes_ = 0;
};

}  // namespace foundry
