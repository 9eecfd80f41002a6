// Tokenizer::load (which file format a path holds) and Tokenizer::encode_batch.
#include "foundry/data/tokenizer.h"

#include <exception>
#include <filesystem>

#include "foundry/core/check.h"
#include "foundry/data/gpt2_tokenizer.h"
#include "foundry/data/hf_tokenizer.h"
#include "foundry/data/tiktoken_tokenizer.h"

namespace foundry {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  std::error_code ec;
  FOUNDRY_CHECK(fs::exists(path, ec), "tokenizer '{}' does not exist", path);
  if (fs::is_directory(path, ec)) {
    const bool json = fs::exists(fs::path(path) / "tokenizer.json", ec);
    const bool encoder = fs::exists(fs::path(path) / "encoder.json", ec);
    const bool merges = fs::exists(fs::path(path) / "vocab.bpe", ec);
    std::vector<std::string> tiktoken;
    for (const auto& entry : fs::directory_iterator(path, ec))
      if (entry.path().extension() == ".tiktoken") tiktoken.push_back(entry.path().string());
    FOUNDRY_CHECK(encoder == merges, "tokenizer directory '{}' has {} but not {}", path,
                  encoder ? "encoder.json" : "vocab.bpe", encoder ? "vocab.bpe" : "encoder.json");
    const int forms = int(json) + int(encoder) + int(!tiktoken.empty());
    FOUNDRY_CHECK(forms > 0, "tokenizer directory '{}' holds no tokenizer.json, encoder.json + vocab.bpe or .tiktoken "
                  "file", path);
    FOUNDRY_CHECK(forms == 1 && tiktoken.size() <= 1, "tokenizer directory '{}' holds more than one tokenizer "
                  "(tokenizer.json, encoder.json + vocab.bpe, .tiktoken files): name the file", path);
    if (json) return load_tokenizer_json((fs::path(path) / "tokenizer.json").string());
    if (encoder) return load_gpt2(path);
    return load_tiktoken(tiktoken[0]);
  }
  const fs::path p(path);
  if (p.extension() == ".tiktoken") return load_tiktoken(path);
  FOUNDRY_CHECK(p.filename() != "encoder.json" && p.filename() != "vocab.bpe",
                "tokenizer '{}': pass the directory holding GPT-2's encoder.json and vocab.bpe", path);
  if (p.extension() == ".json") return load_tokenizer_json(path);
  FOUNDRY_FAIL("tokenizer '{}' is not a .tiktoken file, a tokenizer.json or a directory holding encoder.json + "
               "vocab.bpe", path);
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(std::span<const std::string> docs) const {
  std::vector<std::vector<int32_t>> ids(docs.size());
  std::exception_ptr error;
  const auto n = static_cast<int64_t>(docs.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      ids[i] = encode(docs[i]);
    } catch (...) {  // exceptions must not leave an OpenMP region
#pragma omp critical(foundry_encode_batch_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return ids;
}

}  // namespace foundry
