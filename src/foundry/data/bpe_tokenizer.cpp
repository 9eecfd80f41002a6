// BpeTokenizer (see bpe_tokenizer.h).
#include "foundry/data/bpe_tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "foundry/core/check.h"
#include "foundry/data/hf_tokenizer.h"
#include "foundry/data/tiktoken_tokenizer.h"
#include "foundry/data/tokenizer_io.h"

namespace foundry {

BpeTokenizer::BpeTokenizer(Spec spec) : spec_(std::move(spec)), pretokenizer_(spec_.patterns) {
  const BytePairEncoder& bpe = spec_.bpe;
  int64_t max_id = bpe.max_id();
  for (const SpecialToken& s : spec_.special) {
    FOUNDRY_CHECK(!s.text.empty() && s.id >= 0, "{}: special token '{}' has id {}", spec_.name,
                  quote_for_error(s.text), s.id);
    FOUNDRY_CHECK(!bpe.contains(s.id) || bpe.token_bytes(s.id) == s.text,
                  "{}: special token '{}' has id {}, which is already the token '{}'", spec_.name,
                  quote_for_error(s.text), s.id, quote_for_error(bpe.token_bytes(s.id)));
    max_id = std::max<int64_t>(max_id, s.id);
  }
  vocab_size_ = spec_.vocab_size > 0 ? spec_.vocab_size : max_id + 1;
  FOUNDRY_CHECK(vocab_size_ > max_id, "{}: vocabulary size {} but a token has id {}", spec_.name, vocab_size_, max_id);

  decode_table_.assign(static_cast<size_t>(vocab_size_), nullptr);
  for (int32_t id = 0; id <= bpe.max_id(); ++id)
    if (bpe.contains(id)) decode_table_[id] = &bpe.token_bytes(id);
  special_by_first_byte_.assign(256, {});
  for (size_t i = 0; i < spec_.special.size(); ++i) {
    const SpecialToken& s = spec_.special[i];
    FOUNDRY_CHECK(decode_table_[s.id] == nullptr || *decode_table_[s.id] == s.text,
                  "{}: id {} is given to two special tokens ('{}' and '{}')", spec_.name, s.id,
                  quote_for_error(*decode_table_[s.id]), quote_for_error(s.text));
    decode_table_[s.id] = &s.text;
    special_by_first_byte_[static_cast<unsigned char>(s.text[0])].push_back(i);
  }
  for (auto& bucket : special_by_first_byte_)  // longest first, so the first match is the longest
    std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
      return spec_.special[a].text.size() > spec_.special[b].text.size();
    });
}

void BpeTokenizer::encode_into(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::vector<std::string_view> pieces;  // reused: no allocation per call
  pieces.clear();
  pretokenizer_.split(text, pieces);
  for (std::string_view piece : pieces) spec_.bpe.encode(piece, out);
  if (pieces.capacity() > (1u << 20)) std::vector<std::string_view>().swap(pieces);  // after a huge text
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  encode_into(text, ids);
  return ids;
}

std::vector<int32_t> BpeTokenizer::encode_with_special(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  size_t segment = 0;  // start of the ordinary text not yet encoded
  for (size_t i = 0; i < text.size(); ++i) {
    for (size_t k : special_by_first_byte_[static_cast<unsigned char>(text[i])]) {
      const SpecialToken& s = spec_.special[k];
      if (text.compare(i, s.text.size(), s.text) != 0) continue;
      encode_into(text.substr(segment, i - segment), ids);
      ids.push_back(s.id);
      segment = i + s.text.size();
      i = segment - 1;
      break;
    }
  }
  encode_into(text.substr(segment), ids);
  return ids;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  text.reserve(ids.size() * 4);
  for (const int32_t id : ids) {
    FOUNDRY_CHECK(id >= 0 && id < vocab_size_ && decode_table_[id] != nullptr,
                  "decode: id {} is not a token of {} (vocabulary size {})", id, description(), vocab_size_);
    text += *decode_table_[id];
  }
  return text;
}

int32_t BpeTokenizer::special_token_id(std::string_view text) const {
  for (const SpecialToken& s : spec_.special)
    if (s.text == text) return s.id;
  return -1;
}

int32_t BpeTokenizer::eod_id() const {
  for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"}) {
    const int32_t id = special_token_id(name);
    if (id >= 0) return id;
  }
  FOUNDRY_FAIL("{} has no end-of-document token (<|endoftext|>, <|end_of_text|>, </s> or <eos>)", description());
}

std::string BpeTokenizer::description() const {
  const char* kind = spec_.format == Format::tiktoken     ? "tiktoken"
                     : spec_.format == Format::gpt2_files ? "GPT-2 encoder.json + vocab.bpe"
                                                          : "tokenizer.json BPE";
  return fmt::format("{} {}, {} tokens", kind, spec_.name, vocab_size_);
}

void BpeTokenizer::save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  FOUNDRY_CHECK(!ec && std::filesystem::is_directory(dir), "tokenizer save: cannot create directory '{}': {}", dir,
                ec.message());
  if (spec_.format == Format::tiktoken) {
    save_tiktoken(*this, dir);
  } else {
    save_tokenizer_json(*this, (std::filesystem::path(dir) / "tokenizer.json").string());
  }
}

}  // namespace foundry
