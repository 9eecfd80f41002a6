// GPT-2's original tokenizer files (openai/gpt-2 src/encoder.py; Hugging Face's GPT2Tokenizer):
// encoder.json maps each token, written through bytes_to_unicode (byte_level.h), to its id;
// vocab.bpe lists the merges in priority order, one "left right" per line after a "#version"
// line. Pre-tokenization is GPT-2's regex; <|endoftext|> is the special token. Encoding is the
// merge-list BPE of encoder.py (bpe.h), equal to the gpt2 tiktoken ranks on all text.
#pragma once

#include <memory>
#include <string>

#include "foundry/data/bpe_tokenizer.h"

namespace foundry {

// Reads DIR/encoder.json and DIR/vocab.bpe.
std::unique_ptr<BpeTokenizer> load_gpt2(const std::string& dir);

}  // namespace foundry
