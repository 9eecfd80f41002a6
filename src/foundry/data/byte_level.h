// Byte-level token text: GPT-2's bytes_to_unicode mapping (openai/gpt-2 src/encoder.py; Hugging
// Face tokenizers' ByteLevel pre-tokenizer and decoder), and UTF-8 validation.
//
// bytes_to_unicode maps every byte to one printable character so that byte-level tokens can be
// stored as JSON strings (encoder.json, vocab.bpe, tokenizer.json): the printable Latin-1 bytes
// '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to the code point of the same value, and the other 68
// bytes, in increasing order, to U+0100, U+0101, ... (so ' ' -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace foundry::byte_level {

// Bytes -> their mapped characters, as UTF-8.
std::string encode(std::string_view bytes);
// Mapped UTF-8 text -> bytes. False if `mapped` holds a character outside the mapping (or is not
// UTF-8); `bytes` is then unspecified.
bool decode(std::string_view mapped, std::string& bytes);

// Offset of the first byte of `s` at or after `from` that does not start a well-formed UTF-8
// sequence (Unicode 15 table 3-7: no overlong forms, surrogates or code points above U+10FFFF),
// or s.size() when s[from..] is valid UTF-8.
size_t find_invalid_utf8(std::string_view s, size_t from = 0);

}  // namespace foundry::byte_level
