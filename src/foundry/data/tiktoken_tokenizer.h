// tiktoken's rank files (openai/tiktoken load.py `load_tiktoken_bpe`; also Llama 3's
// tokenizer.model): one token per line, "base64(token bytes) rank", the rank being the token's id
// and merge priority. The pre-tokenization regex and the special tokens come from NAME.meta.json
// beside NAME.tiktoken: {"pat_str": "...", "special_tokens": {"<|endoftext|>": 100257, ...},
// "explicit_n_vocab": 100277 (optional; checked like tiktoken's Encoding does)}.
#pragma once

#include <memory>
#include <string>

#include "foundry/data/bpe_tokenizer.h"

namespace foundry {

// Reads `path` (NAME.tiktoken) and NAME.meta.json.
std::unique_ptr<BpeTokenizer> load_tiktoken(const std::string& path);
// Writes DIR/NAME.tiktoken and DIR/NAME.meta.json; `tok` must be rank-based with one pattern.
void save_tiktoken(const BpeTokenizer& tok, const std::string& dir);

// Standard base64 (RFC 4648, with padding). decode returns false on any malformed input.
std::string base64_encode(std::string_view bytes);
bool base64_decode(std::string_view text, std::string& bytes);

}  // namespace foundry
