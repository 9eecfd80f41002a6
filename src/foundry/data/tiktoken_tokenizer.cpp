// tiktoken rank files + .meta.json (see tiktoken_tokenizer.h).
#include "foundry/data/tiktoken_tokenizer.h"

#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "foundry/core/check.h"
#include "foundry/data/tokenizer_io.h"

namespace foundry {

namespace {

constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string meta_path_of(const std::string& path) {
  const std::string_view suffix = ".tiktoken";
  std::string stem = path;
  if (stem.size() >= suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
    stem.resize(stem.size() - suffix.size());
  return stem + ".meta.json";
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kBase64[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kBase64[v & 63] : '=';
  }
  return out;
}

bool base64_decode(std::string_view text, std::string& bytes) {
  bytes.clear();
  if (text.size() % 4 != 0) return false;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      int d;
      if (c == '=') {
        if (i + 4 != text.size() || k < 2) return false;  // padding only ends the last quantum
        d = 0;
        ++pad;
      } else {
        if (pad > 0) return false;
        const size_t pos = kBase64.find(c);
        if (pos == std::string_view::npos) return false;
        d = static_cast<int>(pos);
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    bytes += static_cast<char>((v >> 16) & 0xFF);
    if (pad < 2) bytes += static_cast<char>((v >> 8) & 0xFF);
    if (pad < 1) bytes += static_cast<char>(v & 0xFF);
  }
  return true;
}

std::unique_ptr<BpeTokenizer> load_tiktoken(const std::string& path) {
  const std::string text = read_file(path, "tiktoken rank file");
  const std::string meta_path = meta_path_of(path);
  FOUNDRY_CHECK(std::filesystem::exists(meta_path),
                "tiktoken rank file '{}' needs its metadata '{}' (pat_str, special_tokens) beside it", path, meta_path);

  std::vector<BytePairEncoder::Token> tokens;
  tokens.reserve(text.size() / 12);
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    int32_t rank = -1;
    BytePairEncoder::Token token;
    bool ok = space != std::string_view::npos && space > 0 && base64_decode(line.substr(0, space), token.bytes);
    if (ok) {
      const char* first = line.data() + space + 1;
      const char* last = line.data() + line.size();
      const auto [ptr, ec] = std::from_chars(first, last, rank);
      ok = first != last && ec == std::errc() && ptr == last && rank >= 0;
    }
    FOUNDRY_CHECK(ok, "{}:{}: expected 'base64-token rank', got '{}' (not a tiktoken rank file, or damaged)", path,
                  line_no, quote_for_error(std::string(line)));
    token.id = rank;
    tokens.push_back(std::move(token));
  }
  FOUNDRY_CHECK(!tokens.empty(), "tiktoken rank file '{}' holds no tokens", path);
  const size_t n_ranks = tokens.size();

  const std::string meta_text = read_file(meta_path, "tiktoken metadata");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(meta_text);
  } catch (const nlohmann::json::exception& e) {
    FOUNDRY_FAIL("tiktoken metadata '{}' is not valid JSON: {}", meta_path, e.what());
  }
  FOUNDRY_CHECK(meta.is_object() && meta.contains("pat_str") && meta["pat_str"].is_string(),
                "tiktoken metadata '{}' lacks the string 'pat_str'", meta_path);

  BpeTokenizer::Spec spec;
  spec.format = BpeTokenizer::Format::tiktoken;
  spec.name = std::filesystem::path(path).stem().string();
  spec.patterns = {meta["pat_str"].get<std::string>()};
  if (meta.contains("special_tokens")) {
    const auto& st = meta["special_tokens"];
    FOUNDRY_CHECK(st.is_object(), "tiktoken metadata '{}': 'special_tokens' must be an object", meta_path);
    for (const auto& [text, id] : st.items()) {
      FOUNDRY_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < INT32_MAX,
                    "tiktoken metadata '{}': special token '{}' needs a non-negative integer id", meta_path, text);
      spec.special.push_back({text, id.get<int32_t>()});
    }
  }
  std::sort(spec.special.begin(), spec.special.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  if (meta.contains("explicit_n_vocab")) {
    FOUNDRY_CHECK(meta["explicit_n_vocab"].is_number_integer(),
                  "tiktoken metadata '{}': 'explicit_n_vocab' must be an integer", meta_path);
    spec.vocab_size = meta["explicit_n_vocab"].get<int64_t>();
    FOUNDRY_CHECK(static_cast<int64_t>(n_ranks + spec.special.size()) == spec.vocab_size,
                  "tiktoken rank file '{}' has {} tokens and {} special tokens, but its metadata says {} in all "
                  "(truncated?)", path, n_ranks, spec.special.size(), spec.vocab_size);
  }
  spec.bpe = BytePairEncoder::from_ranks(std::move(tokens), path);
  for (const SpecialToken& s : spec.special)
    FOUNDRY_CHECK(!spec.bpe.contains(s.id), "tiktoken '{}': special token '{}' has id {}, which is also a rank", path,
                  s.text, s.id);
  return std::make_unique<BpeTokenizer>(std::move(spec));
}

void save_tiktoken(const BpeTokenizer& tok, const std::string& dir) {
  const BpeTokenizer::Spec& spec = tok.spec();
  FOUNDRY_CHECK(spec.bpe.rank_based() && spec.patterns.size() == 1,
                "save_tiktoken: {} is not a rank-based tokenizer with one pattern", tok.description());
  std::string ranks;
  for (int32_t id = 0; id <= spec.bpe.max_id(); ++id)
    if (spec.bpe.contains(id)) ranks += base64_encode(spec.bpe.token_bytes(id)) + " " + std::to_string(id) + "\n";
  nlohmann::ordered_json meta;
  meta["pat_str"] = spec.patterns[0];
  meta["special_tokens"] = nlohmann::ordered_json::object();
  for (const SpecialToken& s : spec.special) meta["special_tokens"][s.text] = s.id;
  if (static_cast<int64_t>(spec.bpe.size() + spec.special.size()) == tok.vocab_size())
    meta["explicit_n_vocab"] = tok.vocab_size();  // only where it holds (cl100k_base has unused ids)
  const std::filesystem::path base = std::filesystem::path(dir) / spec.name;
  write_file_atomic(base.string() + ".tiktoken", ranks);
  write_file_atomic(base.string() + ".meta.json", meta.dump(1) + "\n");
}

}  // namespace foundry
