// Every reference encoding of vectors.json (js-tiktoken 1.0.21, llama3-tokenizer-js 1.2.0) for
// gpt2, cl100k_base, o200k_base and llama3, through each file form that holds the vocabulary:
// .tiktoken, GPT-2's encoder.json + vocab.bpe, and Hugging Face tokenizer.json built here from
// the raw files (GPT-2's ByteLevel form; Llama 3's Split + ByteLevel form with merges derived
// from the ranks as transformers' TikTokenConverter does).
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "foundry/data/byte_level.h"
#include "foundry/data/tiktoken_tokenizer.h"
#include "tokenizer_testing.h"

namespace foundry {
namespace {

using testing::tokenizer_data;
using testing::vectors;

void expect_vectors(const Tokenizer& tok, const std::string& encoding) {
  for (const auto& v : vectors(encoding)) {
    EXPECT_EQ(tok.encode(v.text), v.ids) << encoding << " (" << tok.description() << "): '" << v.text << "'";
    EXPECT_EQ(tok.decode(v.ids), v.text) << encoding << ": '" << v.text << "'";
  }
}

TEST(TokenizerVectors, TiktokenFilesMatchEveryVector) {
  for (const std::string& enc : testing::encodings()) {
    ASSERT_FALSE(vectors(enc).empty());
    expect_vectors(testing::tiktoken(enc), enc);
  }
}

TEST(TokenizerVectors, VocabularySizesAndEod) {
  EXPECT_EQ(testing::tiktoken("gpt2").vocab_size(), 50257);
  EXPECT_EQ(testing::tiktoken("cl100k_base").vocab_size(), 100277);
  EXPECT_EQ(testing::tiktoken("o200k_base").vocab_size(), 200019);
  EXPECT_EQ(testing::tiktoken("llama3").vocab_size(), 128256);
  EXPECT_EQ(testing::tiktoken("gpt2").eod_id(), 50256);
  EXPECT_EQ(testing::tiktoken("cl100k_base").eod_id(), 100257);
  EXPECT_EQ(testing::tiktoken("o200k_base").eod_id(), 199999);
  EXPECT_EQ(testing::tiktoken("llama3").eod_id(), 128001);  // <|end_of_text|>
  EXPECT_EQ(testing::tiktoken("llama3").special_token_id("<|begin_of_text|>"), 128000);
  EXPECT_EQ(testing::tiktoken("llama3").special_token_id("<|nope|>"), -1);
  EXPECT_EQ(testing::tiktoken("cl100k_base").description(), "tiktoken cl100k_base, 100277 tokens");
}

TEST(TokenizerVectors, SpecialTokensAreTextUnlessAsked) {
  const Tokenizer& tok = testing::tiktoken("cl100k_base");
  const std::string text = "a<|endoftext|>b<|fim_prefix|><|endofprompt|>";
  const auto ordinary = tok.encode(text);
  EXPECT_EQ(std::count(ordinary.begin(), ordinary.end(), 100257), 0);
  EXPECT_EQ(tok.decode(ordinary), text);
  const auto special = tok.encode_with_special(text);
  const std::vector<int32_t> expected = {tok.encode("a")[0], 100257, tok.encode("b")[0], 100258, 100276};
  EXPECT_EQ(special, expected);
  EXPECT_EQ(tok.decode(special), text);
  EXPECT_EQ(tok.encode_with_special("<|endoftext"), tok.encode("<|endoftext"));
}

TEST(TokenizerVectors, Gpt2EncoderJsonAndVocabBpeMatchVectorsAndTiktoken) {
  const Tokenizer& files = testing::cached_tokenizer(testing::gpt2_files_dir());
  EXPECT_EQ(files.vocab_size(), 50257);
  EXPECT_EQ(files.eod_id(), 50256);
  expect_vectors(files, "gpt2");
  // The merge-list form and the ranks agree beyond the vectors, on varied text.
  const Tokenizer& ranks = testing::tiktoken("gpt2");
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const std::string text = testing::random_utf8(rng, 1 + rng() % 80);
    ASSERT_EQ(files.encode(text), ranks.encode(text)) << "text: " << text;
  }
  std::string prose;
  for (const auto& enc : testing::encodings())
    for (const auto& v : vectors(enc)) prose += v.text + " ";
  EXPECT_EQ(files.encode(prose), ranks.encode(prose));
}

TEST(TokenizerVectors, Gpt2TokenizerJsonMatchesVectors) {
  // GPT-2's tokenizer.json as Hugging Face publishes it: ByteLevel pre-tokenizer with its regex.
  using ojson = nlohmann::json;  // (ordered_json inserts in linear time: too slow here)
  std::ifstream enc_in(tokenizer_data("gpt2-encoder.json"));
  const ojson vocab = ojson::parse(enc_in);
  ojson merges = ojson::array();
  std::ifstream bpe_in(tokenizer_data("gpt2-vocab.bpe"));
  std::string line;
  std::getline(bpe_in, line);  // #version
  while (std::getline(bpe_in, line))
    if (!line.empty()) merges.push_back(line);
  const ojson j = {
      {"version", "1.0"},
      {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false},
                 {"vocab", vocab}, {"merges", merges}}}};
  const std::string path = testing::scratch_dir("gpt2") + "/tokenizer.json";
  testing::write_text(path, j.dump());
  const auto tok = Tokenizer::load(path);
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eod_id(), 50256);
  expect_vectors(*tok, "gpt2");
}

TEST(TokenizerVectors, Llama3TokenizerJsonMatchesVectors) {
  // Llama 3's tokenizer.json form: Split(pat_str, Isolated) + ByteLevel(use_regex=false), BPE
  // with ignore_merges, the 256 special tokens as added tokens.
  using ojson = nlohmann::json;  // (ordered_json inserts in linear time: too slow here)
  std::unordered_map<std::string, int32_t> ranks;
  std::vector<std::pair<std::string, int32_t>> by_rank;
  {
    std::ifstream in(tokenizer_data("llama3.tiktoken"));
    std::string b64, bytes;
    int32_t rank;
    while (in >> b64 >> rank) {
      ASSERT_TRUE(base64_decode(b64, bytes));
      ranks.emplace(bytes, rank);
      by_rank.emplace_back(bytes, rank);
    }
  }
  // transformers' TikTokenConverter: every split of a token into two tokens is a merge,
  // ordered by the token's rank, then by the ranks of the two halves.
  struct Split {
    int32_t rank, left_rank, right_rank;
    std::string left, right;
  };
  std::vector<Split> splits;
  for (const auto& [bytes, rank] : by_rank) {
    for (size_t i = 1; i < bytes.size(); ++i) {
      const auto l = ranks.find(bytes.substr(0, i)), r = ranks.find(bytes.substr(i));
      if (l != ranks.end() && r != ranks.end()) splits.push_back({rank, l->second, r->second, l->first, r->first});
    }
  }
  std::sort(splits.begin(), splits.end(), [](const Split& a, const Split& b) {
    return std::tie(a.rank, a.left_rank, a.right_rank) < std::tie(b.rank, b.left_rank, b.right_rank);
  });
  ojson vocab = ojson::object();
  for (const auto& [bytes, rank] : by_rank) vocab[byte_level::encode(bytes)] = rank;
  ojson merges = ojson::array();
  for (const Split& s : splits) merges.push_back(byte_level::encode(s.left) + " " + byte_level::encode(s.right));
  std::ifstream meta_in(tokenizer_data("llama3.meta.json"));
  const ojson meta = ojson::parse(meta_in);
  ojson added = ojson::array();
  for (const auto& [text, id] : meta["special_tokens"].items())
    added.push_back({{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  const ojson j = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", meta["pat_str"]}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
      {"post_processor", {{"type", "TemplateProcessing"}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                 {"ignore_merges", true}, {"vocab", vocab}, {"merges", merges}}}};
  const std::string path = testing::scratch_dir("llama3") + "/tokenizer.json";
  testing::write_text(path, j.dump());
  const auto tok = Tokenizer::load(path);
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->eod_id(), 128001);
  expect_vectors(*tok, "llama3");
  const Tokenizer& tiktoken = testing::tiktoken("llama3");
  std::mt19937 rng(11);
  for (int i = 0; i < 300; ++i) {
    const std::string text = testing::random_utf8(rng, 1 + rng() % 80);
    ASSERT_EQ(tok->encode(text), tiktoken.encode(text)) << "text: " << text;
  }
}

TEST(TokenizerVectors, EncodeBatchEqualsEncode) {
  const Tokenizer& tok = testing::tiktoken("llama3");
  std::vector<std::string> docs;
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) docs.push_back(testing::random_utf8(rng, rng() % 300));
  docs.push_back("");
  const auto batch = tok.encode_batch(docs);
  ASSERT_EQ(batch.size(), docs.size());
  for (size_t i = 0; i < docs.size(); ++i) EXPECT_EQ(batch[i], tok.encode(docs[i])) << "doc " << i;
}

}  // namespace
}  // namespace foundry
