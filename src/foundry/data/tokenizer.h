// Tokenizer: text <-> token ids. Implementations: byte-level BPE from tiktoken rank files
// (with the pre-tokenization regex and special tokens of their .meta.json), GPT-2's
// encoder.json + vocab.bpe, and Hugging Face tokenizer.json (BPE model, byte-level
// pre-tokenizer and decoder, added tokens).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace foundry {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Loads from `path`: a .tiktoken file (its .meta.json beside it), a tokenizer.json, or a
  // directory holding encoder.json + vocab.bpe (GPT-2), tokenizer.json, or one .tiktoken file
  // (what save() writes). Missing, truncated or wrong-format files are foundry::Errors naming
  // the path.
  static std::unique_ptr<Tokenizer> load(const std::string& path);

  // Ordinary text to ids (special-token strings in the text are encoded as ordinary text).
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Ids to text; decode(encode(x)) == x for any valid UTF-8 x (and, here, for any bytes x).
  // An id outside the vocabulary is a foundry::Error naming it.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // Like encode, but the special tokens' strings in `text` become their ids (tiktoken's
  // allowed_special="all"; Hugging Face's added tokens); at one position the longest one wins.
  virtual std::vector<int32_t> encode_with_special(std::string_view text) const = 0;
  // The id of special token `text` (e.g. "<|endoftext|>", "<|begin_of_text|>"), or -1.
  virtual int32_t special_token_id(std::string_view text) const = 0;
  // Encodes documents in parallel (OpenMP); result[i] = encode(docs[i]).
  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string> docs) const;

  virtual int64_t vocab_size() const = 0;  // including special tokens
  // End-of-document token: <|endoftext|>, else <|end_of_text|> (Llama 3), </s> or <eos>; a
  // foundry::Error when the tokenizer has none of them.
  virtual int32_t eod_id() const = 0;
  virtual std::string description() const = 0;  // "tiktoken cl100k_base, 100277 tokens" etc.
  // Writes a self-contained copy into directory `dir` (created if missing) that load(dir) reads
  // back with identical behaviour; used to store the tokenizer inside checkpoints.
  virtual void save(const std::string& dir) const = 0;
};

}  // namespace foundry
