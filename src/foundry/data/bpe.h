// Byte-pair encoding of one pre-tokenized piece, in the two forms vocabularies come in:
//
// - Ranks (tiktoken, src/lib.rs `byte_pair_merge`): the vocabulary is token bytes -> rank, the
//   rank is the token id, and the adjacent pair whose concatenation has the lowest rank merges
//   next. A piece that is itself a token is that token.
// - Merge list (GPT-2's encoder.py `bpe`, Hugging Face tokenizers' BPE model): merges[i] =
//   (left id, right id) has priority i (lower first) and yields the vocabulary entry of the
//   concatenated bytes. With ignore_merges (Llama 3's tokenizer.json) a piece that is itself a
//   token is that token, as with ranks; without it, only if the merges rebuild it.
//
// Both merge the lowest-priority adjacent pair first, the leftmost of equal ones, until no pair
// merges. Pieces are merged in place by a quadratic scan (tiktoken's, fastest for the short
// pieces of real text) or, above a length threshold, with a heap over a linked list (O(n log n),
// so a megabyte without spaces stays fast).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "foundry/data/token_map.h"

namespace foundry {

class BytePairEncoder {
 public:
  struct Token {
    std::string bytes;
    int32_t id;
  };
  using Merge = std::pair<int32_t, int32_t>;  // (left id, right id)

  BytePairEncoder() = default;  // empty: assign one made by from_ranks or from_merges

  // `tokens` must hold every single byte, and no bytes or id twice; errors name `source`.
  static BytePairEncoder from_ranks(std::vector<Token> tokens, const std::string& source);
  // `vocab` as above; each merge's ids must be in `vocab` and so must their concatenation. A merge
  // listed twice keeps its first (lowest) priority.
  static BytePairEncoder from_merges(std::vector<Token> vocab, std::vector<Merge> merges, bool ignore_merges,
                                     const std::string& source);

  // Appends the ids of `piece` (any bytes) to `out`.
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

  bool contains(int32_t id) const { return id >= 0 && id < static_cast<int64_t>(present_.size()) && present_[id]; }
  // The bytes of token `id` (which must be contained).
  const std::string& token_bytes(int32_t id) const { return bytes_[id]; }
  int32_t find(std::string_view bytes) const { return ids_.find(bytes); }  // -1 if absent
  int32_t max_id() const { return static_cast<int32_t>(bytes_.size()) - 1; }
  size_t size() const { return ids_.size(); }
  bool rank_based() const { return rank_based_; }
  bool ignore_merges() const { return ignore_merges_; }
  // The merge list (empty for ranks), priority order, duplicates removed.
  const std::vector<Merge>& merges() const { return merges_; }

  // Pieces longer than this merge with the heap (for tests of the two paths; default 128).
  void set_heap_threshold(size_t bytes) { heap_threshold_ = bytes; }

 private:
  void add_tokens(std::vector<Token> tokens, const std::string& source);
  void merge(std::string_view piece, std::vector<int32_t>& out) const;
  template <class PairFn>
  void merge_with(std::string_view piece, PairFn pair, std::vector<int32_t>& out) const;

  bool rank_based_ = true;
  bool ignore_merges_ = true;
  size_t heap_threshold_ = 128;
  BytesMap ids_;                   // token bytes -> id
  std::vector<std::string> bytes_;  // id -> token bytes
  std::vector<char> present_;      // id -> whether the id is a token
  std::vector<char> reachable_;    // id -> merging its bytes yields it (merge lists without ignore_merges)
  int32_t byte_ids_[256] = {};     // byte -> id of its single-byte token
  std::vector<Merge> merges_;
  PairMap pairs_;                  // (left, right) -> (priority, merged id)
};

}  // namespace foundry
