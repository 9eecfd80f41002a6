// Byte-pair merging against naive references: tiktoken's rank merge written with strings and a
// std::map, and GPT-2's encoder.py `bpe` (merge every occurrence of the best bigram per pass);
// both merge paths (quadratic scan, heap) on random pieces; the errors of bad vocabularies.
#include "foundry/data/bpe.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "testing.h"
#include "tokenizer_testing.h"

namespace foundry {
namespace {

using Token = BytePairEncoder::Token;

std::vector<Token> byte_tokens() {
  std::vector<Token> t;
  for (int b = 0; b < 256; ++b) t.push_back({std::string(1, static_cast<char>(b)), b});
  return t;
}

// tiktoken semantics, naively: a piece that is a token is that token; otherwise merge the
// adjacent pair whose concatenation has the lowest rank, leftmost first.
std::vector<int32_t> naive_ranks(const std::map<std::string, int32_t>& ranks, const std::string& piece) {
  if (auto it = ranks.find(piece); it != ranks.end()) return {it->second};
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  while (parts.size() > 1) {
    int32_t best = INT32_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i)
      if (auto it = ranks.find(parts[i] + parts[i + 1]); it != ranks.end() && it->second < best) best = it->second, at = i;
    if (best == INT32_MAX) break;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  std::vector<int32_t> ids;
  for (const auto& p : parts) ids.push_back(ranks.at(p));
  return ids;
}

// openai/gpt-2 src/encoder.py `bpe`, on strings.
std::vector<std::string> naive_gpt2_bpe(const std::map<std::pair<std::string, std::string>, int>& bpe_ranks,
                                        const std::string& token) {
  std::vector<std::string> word;
  for (char c : token) word.emplace_back(1, c);
  while (word.size() > 1) {
    int best = INT32_MAX;
    std::pair<std::string, std::string> bigram;
    for (size_t i = 0; i + 1 < word.size(); ++i)
      if (auto it = bpe_ranks.find({word[i], word[i + 1]}); it != bpe_ranks.end() && it->second < best)
        best = it->second, bigram = it->first;
    if (best == INT32_MAX) break;
    std::vector<std::string> next;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == bigram.first && word[i + 1] == bigram.second) {
        next.push_back(word[i] + word[i + 1]);
        i += 2;
      } else {
        next.push_back(word[i++]);
      }
    }
    word = std::move(next);
  }
  return word;
}

std::string random_piece(std::mt19937& rng, const std::string& alphabet, size_t max_len) {
  std::string s;
  for (size_t n = 1 + rng() % max_len; n > 0; --n) s += alphabet[rng() % alphabet.size()];
  return s;
}

TEST(Bpe, RanksMatchNaiveMergeOnBothPaths) {
  // Tokens over "abc" with random ranks: merges of any shape, ties resolved leftmost.
  std::mt19937 rng(1);
  auto tokens = byte_tokens();
  std::map<std::string, int32_t> ranks;
  for (const auto& t : tokens) ranks[t.bytes] = t.id;
  std::vector<int32_t> new_ranks(600);
  for (size_t i = 0; i < new_ranks.size(); ++i) new_ranks[i] = 256 + static_cast<int32_t>(i);
  std::shuffle(new_ranks.begin(), new_ranks.end(), rng);
  size_t next = 0;
  while (next < new_ranks.size()) {
    const std::string s = random_piece(rng, "abc", 7);
    if (s.size() < 2 || ranks.count(s)) continue;
    ranks[s] = new_ranks[next];
    tokens.push_back({s, new_ranks[next++]});
  }
  BytePairEncoder bpe = BytePairEncoder::from_ranks(tokens, "test");
  for (int t = 0; t < 3000; ++t) {
    const std::string piece = random_piece(rng, t % 2 ? "abc" : "abcd", t < 2900 ? 40 : 400);
    const auto expected = naive_ranks(ranks, piece);
    std::vector<int32_t> scan, heap;
    bpe.set_heap_threshold(1 << 20);
    bpe.encode(piece, scan);
    bpe.set_heap_threshold(0);
    bpe.encode(piece, heap);
    ASSERT_EQ(scan, expected) << piece;
    ASSERT_EQ(heap, expected) << piece;
  }
}

TEST(Bpe, RealRanksAgreeOnBothPaths) {
  // cl100k_base's ranks, read back through the tokenizer's vocabulary.
  const Tokenizer& tok = testing::tiktoken("cl100k_base");
  std::vector<Token> tokens;
  for (int32_t id = 0; id < 100256; ++id) tokens.push_back({tok.decode(std::vector<int32_t>{id}), id});
  BytePairEncoder bpe = BytePairEncoder::from_ranks(tokens, "cl100k_base");
  std::mt19937 rng(2);
  for (int t = 0; t < 300; ++t) {
    const std::string piece = testing::random_utf8(rng, 1 + rng() % 200);
    std::vector<int32_t> scan, heap;
    bpe.set_heap_threshold(1 << 20);
    bpe.encode(piece, scan);
    bpe.set_heap_threshold(0);
    bpe.encode(piece, heap);
    ASSERT_EQ(scan, heap) << piece;
    EXPECT_EQ(tok.decode(scan), piece);
  }
}

TEST(Bpe, MergeListMatchesGpt2EncoderPy) {
  // A random merge list over "abcd" (some merges rebuild bytes an earlier one made).
  std::mt19937 rng(3);
  auto vocab = byte_tokens();
  std::map<std::string, int32_t> ids;
  for (const auto& t : vocab) ids[t.bytes] = t.id;
  std::vector<std::string> symbols = {"a", "b", "c", "d"};
  std::vector<BytePairEncoder::Merge> merges;
  std::map<std::pair<std::string, std::string>, int> bpe_ranks;
  while (merges.size() < 300) {
    const std::string l = symbols[rng() % symbols.size()], r = symbols[rng() % symbols.size()];
    if (l.size() + r.size() > 8 || bpe_ranks.count({l, r})) continue;
    if (!ids.count(l + r)) {
      ids[l + r] = static_cast<int32_t>(vocab.size());
      vocab.push_back({l + r, ids[l + r]});
      symbols.push_back(l + r);
    }
    bpe_ranks[{l, r}] = static_cast<int>(merges.size());
    merges.push_back({ids[l], ids[r]});
  }
  BytePairEncoder bpe = BytePairEncoder::from_merges(vocab, merges, /*ignore_merges=*/false, "test");
  EXPECT_EQ(bpe.merges().size(), 300u);
  for (int t = 0; t < 3000; ++t) {
    const std::string piece = random_piece(rng, t % 2 ? "abcd" : "abcde", t < 2900 ? 30 : 300);
    std::vector<int32_t> expected;
    for (const auto& s : naive_gpt2_bpe(bpe_ranks, piece)) expected.push_back(ids.at(s));
    std::vector<int32_t> scan, heap;
    bpe.set_heap_threshold(1 << 20);
    bpe.encode(piece, scan);
    bpe.set_heap_threshold(0);
    bpe.encode(piece, heap);
    ASSERT_EQ(scan, expected) << piece;
    ASSERT_EQ(heap, expected) << piece;
  }
}

TEST(Bpe, IgnoreMergesUsesWholePieceTokens) {
  // "abc" is a token the merges cannot build (they make "ab" then stop).
  auto vocab = byte_tokens();
  vocab.push_back({"ab", 256});
  vocab.push_back({"abc", 257});
  const std::vector<BytePairEncoder::Merge> merges = {{'a', 'b'}};
  std::vector<int32_t> ids;
  BytePairEncoder::from_merges(vocab, merges, false, "test").encode("abc", ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{256, 'c'}));
  ids.clear();
  BytePairEncoder::from_merges(vocab, merges, true, "test").encode("abc", ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{257}));
}

TEST(Bpe, BadVocabulariesAreErrors) {
  auto missing = byte_tokens();
  missing.erase(missing.begin() + 0x41);
  EXPECT_ERROR_MENTIONS(BytePairEncoder::from_ranks(missing, "f.tiktoken"), "f.tiktoken", "single byte 0x41");
  auto twice = byte_tokens();
  twice.push_back({"a", 300});
  EXPECT_ERROR_MENTIONS(BytePairEncoder::from_ranks(twice, "f"), "token 'a' is listed twice");
  auto same_id = byte_tokens();
  same_id.push_back({"ab", 7});
  EXPECT_ERROR_MENTIONS(BytePairEncoder::from_ranks(same_id, "f"), "id 7 is given to two tokens");
  auto negative = byte_tokens();
  negative.push_back({"ab", -3});
  EXPECT_ERROR_MENTIONS(BytePairEncoder::from_ranks(negative, "f"), "negative id -3");
  EXPECT_ERROR_MENTIONS(BytePairEncoder::from_merges(byte_tokens(), {{'a', 'b'}}, false, "m.json"), "m.json",
                        "merge 0", "'ab'", "not in the vocabulary");
  EXPECT_ERROR_MENTIONS(BytePairEncoder::from_merges(byte_tokens(), {{'a', 999}}, false, "m.json"), "id 999");
}

}  // namespace
}  // namespace foundry
