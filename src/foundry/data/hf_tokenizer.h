// Hugging Face tokenizers' tokenizer.json with a byte-level BPE model (tokenizers
// src/tokenizer/serialization.rs, models/bpe/serialization.rs, pre_tokenizers/byte_level.rs and
// split.rs), as written for GPT-2, Llama 3 and `foundry tokenizer train`:
//
//   model          {"type": "BPE", "vocab": {token: id}, "merges": ["a b", ...] or [["a", "b"], ...],
//                   "ignore_merges": bool}; tokens written through bytes_to_unicode
//   pre_tokenizer  ByteLevel (use_regex: GPT-2's regex), or a Sequence of Split(Regex or String,
//                   behavior "Isolated") ending in ByteLevel(use_regex: false) (Llama 3)
//   decoder        ByteLevel
//   added_tokens   [{"id", "content", "special", ...}]: the special tokens. All of them are
//                   matched by encode_with_special only; Hugging Face also splits them out in
//                   ordinary encoding, which the Tokenizer contract leaves to encode_with_special.
//
// normalizer must be null; post_processor is ignored (encode adds no BOS/EOS). Anything else
// (dropout, byte_fallback, add_prefix_space, other pre-tokenizers) is an error naming it, never
// a silent difference.
#pragma once

#include <memory>
#include <string>

#include "foundry/data/bpe_tokenizer.h"

namespace foundry {

std::unique_ptr<BpeTokenizer> load_tokenizer_json(const std::string& path);
// Writes `tok` (a merge-list BPE) as tokenizer.json at `path`.
void save_tokenizer_json(const BpeTokenizer& tok, const std::string& path);

}  // namespace foundry
