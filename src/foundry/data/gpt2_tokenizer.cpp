// GPT-2's encoder.json + vocab.bpe (see gpt2_tokenizer.h).
#include "foundry/data/gpt2_tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "foundry/core/check.h"
#include "foundry/data/byte_level.h"
#include "foundry/data/tokenizer_io.h"

namespace foundry {

std::unique_ptr<BpeTokenizer> load_gpt2(const std::string& dir) {
  const std::string encoder_path = (std::filesystem::path(dir) / "encoder.json").string();
  const std::string merges_path = (std::filesystem::path(dir) / "vocab.bpe").string();
  const std::string encoder_text = read_file(encoder_path, "GPT-2 encoder.json");
  const std::string merges_text = read_file(merges_path, "GPT-2 vocab.bpe");

  nlohmann::json encoder;
  try {
    encoder = nlohmann::json::parse(encoder_text);
  } catch (const nlohmann::json::exception& e) {
    FOUNDRY_FAIL("GPT-2 encoder.json '{}' is not valid JSON: {}", encoder_path, e.what());
  }
  FOUNDRY_CHECK(encoder.is_object() && !encoder.empty(), "GPT-2 encoder.json '{}' must be a non-empty object "
                "{{token: id}}", encoder_path);
  std::unordered_map<std::string, int32_t> id_of;
  std::vector<BytePairEncoder::Token> vocab;
  vocab.reserve(encoder.size());
  for (const auto& [token, id] : encoder.items()) {
    FOUNDRY_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < INT32_MAX,
                  "GPT-2 encoder.json '{}': token '{}' needs a non-negative integer id", encoder_path, token);
    BytePairEncoder::Token t{{}, id.get<int32_t>()};
    FOUNDRY_CHECK(byte_level::decode(token, t.bytes), "GPT-2 encoder.json '{}': token '{}' is not byte-level text",
                  encoder_path, token);
    id_of.emplace(token, t.id);
    vocab.push_back(std::move(t));
  }

  std::vector<BytePairEncoder::Merge> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < merges_text.size();) {
    size_t end = merges_text.find('\n', pos);
    if (end == std::string::npos) end = merges_text.size();
    std::string_view line(merges_text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    FOUNDRY_CHECK(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                      line.find(' ', space + 1) == std::string_view::npos,
                  "{}:{}: expected 'left right', got '{}'", merges_path, line_no, quote_for_error(std::string(line)));
    const auto left = id_of.find(std::string(line.substr(0, space)));
    const auto right = id_of.find(std::string(line.substr(space + 1)));
    FOUNDRY_CHECK(left != id_of.end() && right != id_of.end(), "{}:{}: merge '{}' names a token not in '{}'",
                  merges_path, line_no, std::string(line), encoder_path);
    merges.push_back({left->second, right->second});
  }
  FOUNDRY_CHECK(!merges.empty(), "GPT-2 vocab.bpe '{}' holds no merges", merges_path);

  BpeTokenizer::Spec spec;
  spec.format = BpeTokenizer::Format::gpt2_files;
  spec.name = dir;
  spec.patterns = {pretokenizer_pattern("gpt2")};
  if (const auto eot = id_of.find("<|endoftext|>"); eot != id_of.end()) spec.special.push_back({eot->first, eot->second});
  spec.bpe = BytePairEncoder::from_merges(std::move(vocab), std::move(merges), /*ignore_merges=*/false, dir);
  return std::make_unique<BpeTokenizer>(std::move(spec));
}

}  // namespace foundry
