// GPT-2's bytes_to_unicode (openai/gpt-2 src/encoder.py) and the UTF-8 validator, against the
// published mapping and a naive decoder written from Unicode's table 3-7.
#include "foundry/data/byte_level.h"

#include <gtest/gtest.h>

#include <random>

namespace foundry {
namespace {

TEST(ByteLevel, KnownCharacters) {
  EXPECT_EQ(byte_level::encode(" "), "\u0120");   // 'Ġ'
  EXPECT_EQ(byte_level::encode("\n"), "\u010A");  // 'Ċ'
  EXPECT_EQ(byte_level::encode(std::string(1, '\0')), "\u0100");
  EXPECT_EQ(byte_level::encode("\x7F"), "\u0121");  // the 34 bytes 0x7F..0xA0 follow the 33 of 0x00..0x20
  EXPECT_EQ(byte_level::encode("\xAD"), "\u0143");  // the last unprintable byte: 256 + 67
  EXPECT_EQ(byte_level::encode("Hello!~"), "Hello!~");
  EXPECT_EQ(byte_level::encode("\xE9"), "\u00E9");  // printable Latin-1 maps to itself
  EXPECT_EQ(byte_level::encode(" world"), "\u0120world");
}

TEST(ByteLevel, AllBytesRoundTripAndMapToDistinctCharacters) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string mapped = byte_level::encode(all);
  std::string back;
  ASSERT_TRUE(byte_level::decode(mapped, back));
  EXPECT_EQ(back, all);
  for (int b = 0; b < 256; ++b) {
    const std::string one = byte_level::encode(std::string(1, static_cast<char>(b)));
    for (int c = 0; c < b; ++c) EXPECT_NE(one, byte_level::encode(std::string(1, static_cast<char>(c))));
  }
}

TEST(ByteLevel, DecodeRejectsUnmappedText) {
  std::string bytes;
  EXPECT_FALSE(byte_level::decode(" ", bytes));       // a raw space is written 'Ġ'
  EXPECT_FALSE(byte_level::decode("\u0144", bytes));  // just past the mapping
  EXPECT_FALSE(byte_level::decode("日", bytes));
  EXPECT_FALSE(byte_level::decode("\xC4", bytes));  // truncated UTF-8
  EXPECT_TRUE(byte_level::decode("", bytes));
  EXPECT_EQ(bytes, "");
}

// Naive: decode the sequence at i by the definition; true when well formed.
bool valid_at(const std::string& s, size_t i, size_t& len) {
  const auto c = static_cast<unsigned char>(s[i]);
  uint32_t cp;
  if (c < 0x80) {
    len = 1;
    return true;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07;
  } else {
    return false;
  }
  if (i + len > s.size()) return false;
  for (size_t k = 1; k < len; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (d & 0x3F);
  }
  const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  return cp >= min[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

size_t naive_find_invalid(const std::string& s) {
  size_t len = 0;
  for (size_t i = 0; i < s.size(); i += len)
    if (!valid_at(s, i, len)) return i;
  return s.size();
}

TEST(ByteLevel, FindInvalidUtf8KnownCases) {
  using byte_level::find_invalid_utf8;
  EXPECT_EQ(find_invalid_utf8("plain ascii text, longer than eight"), 35u);
  EXPECT_EQ(find_invalid_utf8("\xF0\x9F\x98\x80 \xE6\x97\xA5"), 8u);  // 😀 日
  EXPECT_EQ(find_invalid_utf8("ab\xC0\x80"), 2u);                     // overlong NUL
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);                   // a surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);               // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xE0\x9F\xBF"), 0u);                   // overlong 3-byte
  EXPECT_EQ(find_invalid_utf8("x\xE6\x97"), 1u);                      // truncated
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);                           // lone continuation
  EXPECT_EQ(find_invalid_utf8("ab\xFF", 1), 2u);
}

TEST(ByteLevel, FindInvalidUtf8MatchesNaiveDecoderOnRandomBytes) {
  std::mt19937 rng(5);
  const unsigned char kBytes[] = {'a', ' ', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                  0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
  for (int t = 0; t < 20000; ++t) {
    std::string s;
    const size_t n = rng() % 24;
    for (size_t i = 0; i < n; ++i) s += static_cast<char>(kBytes[rng() % std::size(kBytes)]);
    ASSERT_EQ(byte_level::find_invalid_utf8(s), naive_find_invalid(s)) << "case " << t;
  }
}

}  // namespace
}  // namespace foundry
