// The pre-tokenizer: named patterns equal the shared meta.json pat_str, Rust's `\s` semantics,
// Hugging Face Split "Isolated" semantics (gaps are pieces), sequences of patterns, bytes that
// are not UTF-8, very long runs, and bad patterns.
#include "foundry/data/pretokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "testing.h"
#include "tokenizer_testing.h"

namespace foundry {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(const Pretokenizer& p, std::string_view text) {
  std::vector<std::string_view> views;
  p.split(text, views);
  return Pieces(views.begin(), views.end());
}

Pieces split(const std::string& name, std::string_view text) {
  return split(Pretokenizer({pretokenizer_pattern(name)}), text);
}

TEST(Pretokenizer, NamedPatternsAreTheSharedPatStr) {
  const std::pair<const char*, const char*> names[] = {
      {"gpt2", "gpt2"}, {"cl100k", "cl100k_base"}, {"o200k", "o200k_base"}, {"llama3", "llama3"}};
  for (const auto& [name, file] : names) {
    std::ifstream in(testing::tokenizer_data(std::string(file) + ".meta.json"));
    const auto meta = nlohmann::json::parse(in);
    EXPECT_EQ(pretokenizer_pattern(name), meta["pat_str"].get<std::string>()) << name;
  }
  EXPECT_ERROR_MENTIONS(pretokenizer_pattern("gpt3"), "gpt3", "llama3");
}

TEST(Pretokenizer, KnownSplits) {
  EXPECT_EQ(split("gpt2", "Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("gpt2", "I'm here"), (Pieces{"I", "'m", " here"}));
  EXPECT_EQ(split("gpt2", "  leading and  "), (Pieces{" ", " leading", " and", "  "}));
  EXPECT_EQ(split("gpt2", "x=1234567"), (Pieces{"x", "=", "1234567"}));
  EXPECT_EQ(split("cl100k", "x=1234567"), (Pieces{"x", "=", "123", "456", "7"}));
  EXPECT_EQ(split("cl100k", "a\n\n  b"), (Pieces{"a", "\n\n", " ", " b"}));
  EXPECT_EQ(split("llama3", "HE'LL"), (Pieces{"HE", "'LL"}));  // (?i:...) contractions
  EXPECT_EQ(split("gpt2", "HE'LL"), (Pieces{"HE", "'", "LL"}));
  EXPECT_EQ(split("o200k", "HelloWorld's"), (Pieces{"Hello", "World's"}));
  EXPECT_EQ(split("gpt2", ""), Pieces{});
}

TEST(Pretokenizer, WhitespaceIsUnicodeWhiteSpaceAsInRust) {
  // A whitespace run keeps its last character for the next piece only when it is whitespace;
  // other characters outside \p{L}\p{N} group into one piece.
  for (const char* ws : {"\t", "\u0085", "\u00A0", "\u2009", "\u3000", "\u2028"})
    EXPECT_EQ(split("gpt2", std::string("a") + ws + ws + "b"), (Pieces{"a", ws, ws, "b"})) << ws;
  for (const char* other : {"\u180E", "\uFEFF", "\u200B"})  // not White_Space in Unicode 6.3+
    EXPECT_EQ(split("gpt2", std::string("a") + other + other + "b"), (Pieces{"a", std::string(other) + other, "b"}))
        << other;
}

TEST(Pretokenizer, TranslatePattern) {
  const std::string ws = translate_pattern("\\s");
  EXPECT_EQ(ws.front(), '[');
  EXPECT_NE(ws.find("\\x{85}"), std::string::npos);
  EXPECT_EQ(translate_pattern("\\S"), "[^" + ws.substr(1));
  EXPECT_EQ(translate_pattern("[^\\s\\p{L}]"), "[^" + ws.substr(1, ws.size() - 2) + "\\p{L}]");
  EXPECT_EQ(translate_pattern("\\\\s"), "\\\\s");  // an escaped backslash, then 's'
  EXPECT_EQ(translate_pattern("[]\\s]"), "[]" + ws.substr(1));  // a leading ']' is literal
  EXPECT_EQ(translate_pattern("[[:alpha:]\\s]"), "[[:alpha:]" + ws.substr(1));
  EXPECT_EQ(translate_pattern("\\p{N}{1,3}"), "\\p{N}{1,3}");
  EXPECT_ERROR_MENTIONS(translate_pattern("[\\S]"), "\\S inside a character class");
}

TEST(Pretokenizer, IsolatedSplitKeepsTheTextBetweenMatches) {
  EXPECT_EQ(split(Pretokenizer({"\\d"}), "ab1cd23"), (Pieces{"ab", "1", "cd", "2", "3"}));
  // A pattern that can match empty: nothing is lost, nothing loops.
  const Pieces p = split(Pretokenizer({"x*"}), "abxxcé");
  std::string joined;
  for (const auto& s : p) joined += s;
  EXPECT_EQ(joined, "abxxcé");
  EXPECT_NE(std::find(p.begin(), p.end(), "xx"), p.end());
  // A sequence splits the pieces of the previous pattern.
  EXPECT_EQ(split(Pretokenizer({" ", "b"}), "ab cd"), (Pieces{"a", "b", " ", "cd"}));
  // No pattern: the text is one piece.
  EXPECT_EQ(split(Pretokenizer(std::vector<std::string>{}), "ab cd"), (Pieces{"ab cd"}));
}

TEST(Pretokenizer, BytesThatAreNotUtf8AreOwnPieces) {
  EXPECT_EQ(split("gpt2", "ab\xFF" "cd \xC3"), (Pieces{"ab", "\xFF", "cd", " ", "\xC3"}));
  std::mt19937 rng(9);
  const Pretokenizer p({pretokenizer_pattern("cl100k")});
  for (int t = 0; t < 500; ++t) {
    std::string s;
    for (size_t i = rng() % 64; i > 0; --i) s += static_cast<char>(rng() % 4 == 0 ? rng() % 256 : "ab \n'1"[rng() % 6]);
    std::string joined;
    for (const auto& piece : split(p, s)) {
      EXPECT_FALSE(piece.empty());
      joined += piece;
    }
    ASSERT_EQ(joined, s);
  }
}

TEST(Pretokenizer, LongRunsSplitQuickly) {
  const std::string spaces(1 << 20, ' ');
  for (const char* name : {"gpt2", "cl100k", "o200k", "llama3"}) {
    const Pieces p = split(name, spaces + "x");
    ASSERT_EQ(p.size(), 2u) << name;
    EXPECT_EQ(p[0].size(), (1u << 20) - 1) << name;
    EXPECT_EQ(p[1], " x") << name;
    std::string mixed;  // whitespace runs with line breaks backtrack in \s*[\r\n]+
    for (int i = 0; i < 100000; ++i) mixed += i % 7 == 0 ? "\n" : " \t";
    std::string joined;
    for (const auto& piece : split(name, mixed + "x")) joined += piece;
    EXPECT_EQ(joined, mixed + "x") << name;
  }
  EXPECT_EQ(split("gpt2", std::string(1 << 20, 'a')).size(), 1u);
}

TEST(Pretokenizer, BadPatternIsAnErrorQuotingIt) {
  EXPECT_ERROR_MENTIONS(Pretokenizer({"(ab"}), "(ab", "does not compile");
  EXPECT_ERROR_MENTIONS(Pretokenizer({"\\p{Nope}"}), "\\p{Nope}");
}

}  // namespace
}  // namespace foundry
