// Streams a generation to stdout: the prompt, then each new piece of text as soon as it decodes
// to whole characters, then a line with the token count and decode speed.
#pragma once

#include <cstdio>
#include <string>

#include "foundry/data/tokenizer.h"
#include "foundry/models/gpt/generate.h"

namespace foundry::cli {

inline GenerateResult print_generation(const GPTModel& model, const Tokenizer& tokenizer, const std::string& prompt,
                                       GenerateConfig cfg) {
  const std::vector<int32_t> ids = tokenizer.encode(prompt);
  FOUNDRY_CHECK(!ids.empty(), "the prompt must not be empty");
  if (cfg.stop_token < 0) cfg.stop_token = tokenizer.eod_id();
  std::fputs(prompt.c_str(), stdout);
  std::fflush(stdout);
  std::vector<int32_t> generated;
  std::string shown;
  const GenerateResult r = generate(model, ids, cfg, [&](int32_t id) {
    generated.push_back(id);
    const std::string text = tokenizer.decode(generated);
    // A partial UTF-8 character decodes to a prefix that changes later: print only growth.
    if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
      std::fputs(text.c_str() + shown.size(), stdout);
      std::fflush(stdout);
      shown = text;
    }
  });
  std::printf("\n[%lld prompt tokens, %lld new tokens, %.0f tokens/s decode]\n",
              static_cast<long long>(r.stats.prompt_tokens), static_cast<long long>(r.stats.new_tokens),
              r.stats.decode_tokens_per_second());
  return r;
}

}  // namespace foundry::cli
