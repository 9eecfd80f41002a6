// decode(encode(x)) == x for every tokenizer form on adversarial and random UTF-8 (emoji with
// joiners, combining marks, CJK, whitespace runs, 4-byte characters, contractions, long pieces),
// and here on any bytes at all.
#include <gtest/gtest.h>

#include <random>

#include "tokenizer_testing.h"

namespace foundry {
namespace {

const std::vector<std::string>& adversarial() {
  static const std::vector<std::string> texts = {
      "",
      " ",
      "\n",
      "   \t\t\n\n\r\n   ",
      std::string(5000, ' '),
      std::string(3000, '\n') + "x",
      "👩‍👩‍👧‍👦🏳️‍🌈👍🏽🇯🇵",
      "e\u0301\u0302\u0303 a\u0308\u0308\u0308\u0308 \u0301\u0301leading marks",
      "Z\u0351\u0352\u0353\u0354\u0355\u0356\u0357\u0358\u0359\u035A\u035B",
      "日本語のテキスト、中文文本，한국어 텍스트",
      "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕋𝕖𝕩𝕥 𓀀𓀁𓀂 \U0010FFFF\U000F0000",
      "\u00A0\u2009\u3000\u0085\u180E\uFEFF\u200B\u2028\u2029",
      "'s'S't'T're'RE've'VE'm'M'll'LL'd'D ſ'ſ K'K",
      "İstanbul ǅungla ᾼ Σίσυφος ΣΊΣΥΦΟΣ",
      "1234567890123456789 ١٢٣٤ ⅣⅫ ½ ²³",
      std::string(4000, 'a'),
      "abcdefghijklmnopqrstuvwxyz" + std::string(2000, 'z') + "é",
      "<|endoftext|><|begin_of_text|><|fim_prefix|>",
      "\x01\x02\x03\x7F control \x1B[31m",
      "mixed\r\nline\rendings\n\u2028done",
  };
  return texts;
}

std::vector<const Tokenizer*> all_tokenizers() {
  std::vector<const Tokenizer*> toks;
  for (const auto& enc : testing::encodings()) toks.push_back(&testing::tiktoken(enc));
  toks.push_back(&testing::cached_tokenizer(testing::gpt2_files_dir()));
  return toks;
}

TEST(TokenizerRoundTrip, AdversarialText) {
  for (const Tokenizer* tok : all_tokenizers())
    for (const std::string& text : adversarial()) {
      const auto ids = tok->encode(text);
      for (const int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size()) << tok->description();
      ASSERT_EQ(tok->decode(ids), text) << tok->description() << ": '" << text << "'";
    }
}

TEST(TokenizerRoundTrip, RandomValidUtf8) {
  std::mt19937 rng(17);
  for (const Tokenizer* tok : all_tokenizers())
    for (int t = 0; t < 150; ++t) {
      const std::string text = testing::random_utf8(rng, rng() % 400);
      ASSERT_EQ(tok->decode(tok->encode(text)), text) << tok->description() << ": '" << text << "'";
    }
}

TEST(TokenizerRoundTrip, AnyBytes) {
  std::mt19937 rng(19);
  for (const Tokenizer* tok : all_tokenizers())
    for (int t = 0; t < 150; ++t) {
      std::string bytes;
      for (size_t n = rng() % 200; n > 0; --n) bytes += static_cast<char>(rng() % 256);
      ASSERT_EQ(tok->decode(tok->encode(bytes)), bytes) << tok->description();
    }
}

TEST(TokenizerRoundTrip, SpecialTokensRoundTrip) {
  for (const auto& enc : testing::encodings()) {
    const Tokenizer& tok = testing::tiktoken(enc);
    const std::string text = "start<|endoftext|>mid<|end_of_text|><|begin_of_text|>end";
    EXPECT_EQ(tok.decode(tok.encode_with_special(text)), text) << enc;
  }
}

}  // namespace
}  // namespace foundry
