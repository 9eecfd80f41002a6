// Hugging Face tokenizer.json, byte-level BPE (see hf_tokenizer.h).
#include "foundry/data/hf_tokenizer.h"

#include <cctype>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "foundry/core/check.h"
#include "foundry/data/byte_level.h"
#include "foundry/data/tokenizer_io.h"

namespace foundry {

namespace {

using json = nlohmann::json;

std::string type_of(const json& j) { return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "?"; }

bool is_null_or(const json& j, const char* key, const json& allowed) {
  return !j.contains(key) || j[key].is_null() || j[key] == allowed;
}

// Boolean field `key` of `j` (`fallback` when absent or null); another type is an error.
bool get_bool(const json& j, const char* key, bool fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  FOUNDRY_CHECK(j[key].is_boolean(), "{}: '{}' must be true or false, got {}", path, key, j[key].dump());
  return j[key].get<bool>();
}

// A literal for PCRE2: every non-alphanumeric ASCII character escaped.
std::string escape_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x80 && !std::isalnum(static_cast<unsigned char>(c))) out += '\\';
    out += c;
  }
  return out;
}

// Appends the regexes of pre-tokenizer `j` to `patterns`; sets byte_level when it meets ByteLevel.
void read_pre_tokenizer(const json& j, const std::string& path, std::vector<std::string>& patterns, bool& byte_level) {
  const std::string type = type_of(j);
  FOUNDRY_CHECK(!byte_level, "{}: pre_tokenizer {} after ByteLevel is not supported (ByteLevel must come last)", path,
                type);
  if (type == "ByteLevel") {
    FOUNDRY_CHECK(!get_bool(j, "add_prefix_space", false, path),
                  "{}: ByteLevel add_prefix_space=true is not supported (decode(encode(x)) would not be x)", path);
    if (get_bool(j, "use_regex", true, path)) patterns.push_back(pretokenizer_pattern("gpt2"));
    byte_level = true;
  } else if (type == "Split") {
    FOUNDRY_CHECK(j.value("behavior", std::string()) == "Isolated",
                  "{}: Split behavior '{}' is not supported (only 'Isolated')", path, j.value("behavior", std::string()));
    FOUNDRY_CHECK(!get_bool(j, "invert", false, path), "{}: Split with invert=true is not supported", path);
    const json& p = j.contains("pattern") ? j["pattern"] : json();
    if (p.contains("Regex") && p["Regex"].is_string()) {
      patterns.push_back(p["Regex"].get<std::string>());
    } else if (p.contains("String") && p["String"].is_string()) {
      patterns.push_back(escape_literal(p["String"].get<std::string>()));
    } else {
      FOUNDRY_FAIL("{}: Split needs a pattern {{\"Regex\": ...}} or {{\"String\": ...}}", path);
    }
  } else if (type == "Sequence") {
    FOUNDRY_CHECK(j.contains("pretokenizers") && j["pretokenizers"].is_array(),
                  "{}: pre_tokenizer Sequence needs a 'pretokenizers' array", path);
    for (const json& child : j["pretokenizers"]) read_pre_tokenizer(child, path, patterns, byte_level);
  } else {
    FOUNDRY_FAIL("{}: pre_tokenizer type '{}' is not supported (ByteLevel, Split(Isolated) or a Sequence of them)",
                 path, type);
  }
}

}  // namespace

std::unique_ptr<BpeTokenizer> load_tokenizer_json(const std::string& path) {
  const std::string text = read_file(path, "tokenizer.json");
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    FOUNDRY_FAIL("tokenizer.json '{}' is not valid JSON: {}", path, e.what());
  }
  FOUNDRY_CHECK(root.is_object() && root.contains("model") && root["model"].is_object(),
                "'{}' is not a Hugging Face tokenizer.json (no 'model' object)", path);
  try {
    const json& model = root["model"];
    FOUNDRY_CHECK(!model.contains("type") || model["type"] == "BPE", "{}: model type '{}' is not supported (only BPE)",
                  path, type_of(model));
    FOUNDRY_CHECK(model.contains("vocab") && model["vocab"].is_object() && model.contains("merges") &&
                      model["merges"].is_array(),
                  "{}: the BPE model needs a 'vocab' object and a 'merges' array", path);
    FOUNDRY_CHECK(is_null_or(model, "dropout", 0.0), "{}: BPE dropout is not supported", path);
    FOUNDRY_CHECK(!get_bool(model, "byte_fallback", false, path), "{}: BPE byte_fallback is not supported", path);
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      FOUNDRY_CHECK(is_null_or(model, key, ""), "{}: BPE {} is not supported", path, key);
    FOUNDRY_CHECK(!root.contains("normalizer") || root["normalizer"].is_null(),
                  "{}: normalizer '{}' is not supported (only null)", path, type_of(root["normalizer"]));
    const json& decoder = root.contains("decoder") ? root["decoder"] : json();
    const bool decoder_ok = type_of(decoder) == "ByteLevel" ||
                            (type_of(decoder) == "Sequence" && decoder.contains("decoders") &&
                             decoder["decoders"].size() == 1 && type_of(decoder["decoders"][0]) == "ByteLevel");
    FOUNDRY_CHECK(decoder_ok, "{}: decoder '{}' is not supported (only ByteLevel)", path, type_of(decoder));

    BpeTokenizer::Spec spec;
    spec.format = BpeTokenizer::Format::tokenizer_json;
    spec.name = path;
    bool byte_level = false;
    FOUNDRY_CHECK(root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null(),
                  "{}: no pre_tokenizer; byte-level BPE needs ByteLevel", path);
    read_pre_tokenizer(root["pre_tokenizer"], path, spec.patterns, byte_level);
    FOUNDRY_CHECK(byte_level, "{}: the pre_tokenizer has no ByteLevel step; only byte-level BPE is supported", path);

    std::unordered_map<int32_t, std::string> added;  // id -> content
    if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
      FOUNDRY_CHECK(root["added_tokens"].is_array(), "{}: 'added_tokens' must be an array", path);
      for (const json& t : root["added_tokens"]) {
        FOUNDRY_CHECK(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t["id"].get<int64_t>() >= 0 &&
                          t["id"].get<int64_t>() < INT32_MAX && t.contains("content") && t["content"].is_string() &&
                          !t["content"].get<std::string>().empty(),
                      "{}: each added token needs a non-negative 'id' and a non-empty 'content', got {}", path,
                      t.dump().substr(0, 120));
        spec.special.push_back({t["content"].get<std::string>(), t["id"].get<int32_t>()});
        added.emplace(spec.special.back().id, spec.special.back().text);
      }
    }

    const json& vocab_json = model["vocab"];
    std::unordered_map<std::string, int32_t> id_of;
    id_of.reserve(vocab_json.size());
    std::vector<BytePairEncoder::Token> vocab;
    vocab.reserve(vocab_json.size());
    for (const auto& [token, id] : vocab_json.items()) {
      FOUNDRY_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < INT32_MAX,
                    "{}: vocab token '{}' needs a non-negative integer id", path, token);
      BytePairEncoder::Token t{{}, id.get<int32_t>()};
      id_of.emplace(token, t.id);
      if (!byte_level::decode(token, t.bytes)) {
        const auto a = added.find(t.id);  // an added token may sit in the vocab in plain text
        FOUNDRY_CHECK(a != added.end() && a->second == token,
                      "{}: vocab token '{}' (id {}) is not byte-level text", path, token, t.id);
        continue;
      }
      vocab.push_back(std::move(t));
    }

    const json& merges_json = model["merges"];
    std::vector<BytePairEncoder::Merge> merges;
    merges.reserve(merges_json.size());
    for (size_t i = 0; i < merges_json.size(); ++i) {
      const json& m = merges_json[i];
      std::string left, right;
      if (m.is_string()) {  // "left right"
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        FOUNDRY_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                      "{}: merge {} '{}' is not 'left right'", path, i, s);
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else {
        FOUNDRY_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                      "{}: merge {} must be \"left right\" or [\"left\", \"right\"], got {}", path, i, m.dump());
        left = m[0].get<std::string>();
        right = m[1].get<std::string>();
      }
      const auto l = id_of.find(left), r = id_of.find(right);
      FOUNDRY_CHECK(l != id_of.end() && r != id_of.end(), "{}: merge {} ('{}' '{}') names a token not in the vocab",
                    path, i, left, right);
      merges.push_back({l->second, r->second});
    }
    const bool ignore_merges = get_bool(model, "ignore_merges", false, path);
    spec.bpe = BytePairEncoder::from_merges(std::move(vocab), std::move(merges), ignore_merges, path);
    return std::make_unique<BpeTokenizer>(std::move(spec));
  } catch (const json::exception& e) {  // a field of the wrong JSON type
    FOUNDRY_FAIL("tokenizer.json '{}': {}", path, e.what());
  }
}

void save_tokenizer_json(const BpeTokenizer& tok, const std::string& path) {
  using ojson = nlohmann::ordered_json;
  const BpeTokenizer::Spec& spec = tok.spec();
  const BytePairEncoder& bpe = spec.bpe;
  FOUNDRY_CHECK(!bpe.rank_based(), "save_tokenizer_json: {} has ranks, not a merge list", tok.description());
  ojson root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = ojson::array();
  for (const SpecialToken& s : spec.special)
    root["added_tokens"].push_back({{"id", s.id}, {"content", s.text}, {"single_word", false}, {"lstrip", false},
                                    {"rstrip", false}, {"normalized", false}, {"special", true}});
  root["normalizer"] = nullptr;
  const ojson byte_level_step = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                                 {"use_regex", false}};
  if (spec.patterns.size() == 1 && spec.patterns[0] == pretokenizer_pattern("gpt2")) {
    root["pre_tokenizer"] = byte_level_step;  // GPT-2's form: ByteLevel with its built-in regex
    root["pre_tokenizer"]["use_regex"] = true;
  } else {
    ojson steps = ojson::array();
    for (const std::string& p : spec.patterns)
      steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", p}}}, {"behavior", "Isolated"}, {"invert", false}});
    steps.push_back(byte_level_step);
    root["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
  }
  root["post_processor"] = nullptr;
  root["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  ojson model = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                 {"ignore_merges", bpe.ignore_merges()}};
  ojson vocab = ojson::object();
  // In id order; appended through ordered_map's vector base, since its own insert searches
  // linearly (quadratic for a 100k vocabulary). Keys are distinct: the mapping is a bijection.
  auto& entries = static_cast<std::vector<std::pair<const std::string, ojson>>&>(vocab.get_ref<ojson::object_t&>());
  std::vector<std::string> mapped(static_cast<size_t>(bpe.max_id()) + 1);
  for (int32_t id = 0; id <= bpe.max_id(); ++id) {
    if (!bpe.contains(id)) continue;
    mapped[id] = byte_level::encode(bpe.token_bytes(id));
    entries.emplace_back(mapped[id], id);
  }
  model["vocab"] = std::move(vocab);
  ojson merges = ojson::array();
  for (const auto& [l, r] : bpe.merges()) merges.push_back(mapped[l] + " " + mapped[r]);
  model["merges"] = std::move(merges);
  root["model"] = std::move(model);
  std::string text;
  try {
    text = root.dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {  // e.g. a special token that is not UTF-8
    FOUNDRY_FAIL("cannot write tokenizer.json '{}': {}", path, e.what());
  }
  write_file_atomic(path, text);
}

}  // namespace foundry
