// BpeTokenizer: the Tokenizer of every supported format. Byte-level BPE = pre-tokenization
// regexes (pretokenizer.h) + byte-pair merging of each piece (bpe.h) + special tokens, which
// ordinary encoding treats as text and encode_with_special / decode know by id.
//
// The formats differ only in how they are read and written: tiktoken rank files
// (tiktoken_tokenizer.h), GPT-2's encoder.json + vocab.bpe (gpt2_tokenizer.h) and Hugging Face
// tokenizer.json (hf_tokenizer.h).
#pragma once

#include <string>
#include <vector>

#include "foundry/data/bpe.h"
#include "foundry/data/pretokenizer.h"
#include "foundry/data/tokenizer.h"

namespace foundry {

struct SpecialToken {
  std::string text;
  int32_t id;
};

class BpeTokenizer final : public Tokenizer {
 public:
  enum class Format { tiktoken, gpt2_files, tokenizer_json };
  struct Spec {
    Format format = Format::tokenizer_json;
    std::string name;                   // "cl100k_base", or the path it was read from
    std::vector<std::string> patterns;  // pre-tokenization, applied in sequence
    BytePairEncoder bpe;
    std::vector<SpecialToken> special;  // ids may repeat a BPE token only with the same bytes
    int64_t vocab_size = 0;             // 0: the largest id + 1
  };
  // Checks the special tokens against the BPE vocabulary; errors name spec.name.
  explicit BpeTokenizer(Spec spec);
  BpeTokenizer(const BpeTokenizer&) = delete;  // decode_table_ points into spec_
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  std::vector<int32_t> encode_with_special(std::string_view text) const override;
  int32_t special_token_id(std::string_view text) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  int32_t eod_id() const override;
  std::string description() const override;
  // tiktoken: <name>.tiktoken + <name>.meta.json; the others: tokenizer.json.
  void save(const std::string& dir) const override;

  const Spec& spec() const { return spec_; }
  // Appends the ids of `text` (ordinary encoding) to `out`.
  void encode_into(std::string_view text, std::vector<int32_t>& out) const;

 private:
  Spec spec_;
  Pretokenizer pretokenizer_;
  int64_t vocab_size_ = 0;
  std::vector<const std::string*> decode_table_;  // id -> bytes, nullptr where no token
  std::vector<std::vector<size_t>> special_by_first_byte_;  // first byte -> indices into spec_.special
};

}  // namespace foundry
