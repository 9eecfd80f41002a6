// GPT-2's bytes_to_unicode (openai/gpt-2 src/encoder.py) and a UTF-8 validator.
#include "foundry/data/byte_level.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace foundry::byte_level {

namespace {

struct Tables {
  std::array<uint32_t, 256> to_code{};  // byte -> code point
  std::array<int16_t, 324> to_byte{};   // code point (< 0x144) -> byte, -1 if unmapped
  Tables() {
    to_byte.fill(-1);
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_code[b] = printable ? b : 256 + extra++;
      to_byte[to_code[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::string encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    const uint32_t c = t.to_code[b];
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {  // all mapped code points are below U+0800: two UTF-8 bytes
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

bool decode(std::string_view mapped, std::string& bytes) {
  const Tables& t = tables();
  bytes.clear();
  bytes.reserve(mapped.size());
  for (size_t i = 0; i < mapped.size();) {
    const auto c0 = static_cast<unsigned char>(mapped[i]);
    uint32_t c;
    if (c0 < 0x80) {
      c = c0;
      i += 1;
    } else if ((c0 & 0xE0) == 0xC0 && i + 1 < mapped.size() &&
               (static_cast<unsigned char>(mapped[i + 1]) & 0xC0) == 0x80) {
      c = ((c0 & 0x1F) << 6) | (static_cast<unsigned char>(mapped[i + 1]) & 0x3F);
      i += 2;
    } else {
      return false;  // longer sequences are never in the mapping
    }
    if (c >= t.to_byte.size() || t.to_byte[c] < 0) return false;
    bytes += static_cast<char>(t.to_byte[c]);
  }
  return true;
}

size_t find_invalid_utf8(std::string_view s, size_t from) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = from;
  auto cont = [&](size_t k) { return k < n && (p[k] & 0xC0) == 0x80; };
  while (i < n) {
    if (i + 8 <= n) {  // ASCII fast path, eight bytes at a time
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!cont(i + 1)) return i;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (i + 1 >= n) return i;
      const unsigned char c1 = p[i + 1];
      const bool ok1 = c == 0xE0   ? (c1 >= 0xA0 && c1 <= 0xBF)   // no overlong forms
                       : c == 0xED ? (c1 >= 0x80 && c1 <= 0x9F)   // no surrogates
                                   : (c1 & 0xC0) == 0x80;
      if (!ok1 || !cont(i + 2)) return i;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (i + 1 >= n) return i;
      const unsigned char c1 = p[i + 1];
      const bool ok1 = c == 0xF0   ? (c1 >= 0x90 && c1 <= 0xBF)   // no overlong forms
                       : c == 0xF4 ? (c1 >= 0x80 && c1 <= 0x8F)   // nothing above U+10FFFF
                                   : (c1 & 0xC0) == 0x80;
      if (!ok1 || !cont(i + 2) || !cont(i + 3)) return i;
      i += 4;
    } else {
      return i;  // a continuation byte, 0xC0, 0xC1 or 0xF5..0xFF
    }
  }
  return n;
}

}  // namespace foundry::byte_level
