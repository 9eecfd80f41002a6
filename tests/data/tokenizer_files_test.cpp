// Tokenizer::load by path form, save() + load() round trips, and bad input: each missing,
// truncated, garbled or wrong-format file is one clear foundry::Error naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "foundry/data/byte_level.h"
#include "foundry/data/tiktoken_tokenizer.h"
#include "testing.h"
#include "tokenizer_testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::scratch_dir;
using testing::tokenizer_data;
using testing::write_text;

// Same ids as `ref` on the vectors of every encoding and on random UTF-8.
void expect_same_encoding(const Tokenizer& tok, const Tokenizer& ref) {
  EXPECT_EQ(tok.vocab_size(), ref.vocab_size());
  std::mt19937 rng(23);
  std::vector<std::string> texts;
  for (const auto& enc : testing::encodings())
    for (const auto& v : testing::vectors(enc)) texts.push_back(v.text);
  for (int i = 0; i < 100; ++i) texts.push_back(testing::random_utf8(rng, rng() % 200));
  for (const auto& text : texts) {
    ASSERT_EQ(tok.encode(text), ref.encode(text)) << text;
    ASSERT_EQ(tok.encode_with_special(text + "<|endoftext|>"), ref.encode_with_special(text + "<|endoftext|>"));
  }
}

TEST(TokenizerFiles, Base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");  // RFC 4648 section 10
  std::string out;
  EXPECT_TRUE(base64_decode("Zm9vYg==", out));
  EXPECT_EQ(out, "foob");
  for (const char* bad : {"Zg=", "Z===", "Zg=a", "Zm9v!mFy", "=Zg="}) EXPECT_FALSE(base64_decode(bad, out)) << bad;
  std::mt19937 rng(1);
  for (int i = 0; i < 200; ++i) {
    std::string bytes;
    for (size_t n = rng() % 20; n > 0; --n) bytes += static_cast<char>(rng());
    ASSERT_TRUE(base64_decode(base64_encode(bytes), out));
    ASSERT_EQ(out, bytes);
  }
}

TEST(TokenizerFiles, TiktokenSavesAndLoadsBack) {
  for (const char* enc : {"cl100k_base", "gpt2"}) {
    const Tokenizer& ref = testing::tiktoken(enc);
    const std::string dir = scratch_dir(enc);
    ref.save(dir);
    EXPECT_TRUE(fs::exists(dir + "/" + enc + ".tiktoken"));
    EXPECT_TRUE(fs::exists(dir + "/" + enc + ".meta.json"));
    const auto tok = Tokenizer::load(dir);
    EXPECT_EQ(tok->description(), ref.description());
    EXPECT_EQ(tok->eod_id(), ref.eod_id());
    expect_same_encoding(*tok, ref);
  }
  // The rank file is written as tiktoken does: byte for byte the same for GPT-2.
  const std::string dir = scratch_dir("again");
  testing::tiktoken("gpt2").save(dir);
  EXPECT_EQ(read_text(dir + "/gpt2.tiktoken"), read_text(tokenizer_data("gpt2.tiktoken")));
}

TEST(TokenizerFiles, Gpt2FilesSaveAsTokenizerJson) {
  const Tokenizer& ref = testing::cached_tokenizer(testing::gpt2_files_dir());
  const std::string dir = scratch_dir("gpt2");
  ref.save(dir);
  ASSERT_TRUE(fs::exists(dir + "/tokenizer.json"));
  const auto tok = Tokenizer::load(dir);
  EXPECT_NE(tok->description().find("tokenizer.json"), std::string::npos);
  EXPECT_EQ(tok->eod_id(), 50256);
  expect_same_encoding(*tok, ref);
  expect_same_encoding(*tok, testing::tiktoken("gpt2"));
  // Saving what was loaded gives the same file.
  const std::string again = scratch_dir("again");
  tok->save(again);
  EXPECT_EQ(read_text(again + "/tokenizer.json"), read_text(dir + "/tokenizer.json"));
  // The file path itself loads too.
  EXPECT_EQ(Tokenizer::load(dir + "/tokenizer.json")->vocab_size(), 50257);
}

TEST(TokenizerFiles, DecodeRejectsIdsOutsideTheVocabulary) {
  const Tokenizer& tok = testing::tiktoken("cl100k_base");
  EXPECT_ERROR_MENTIONS(tok.decode(std::vector<int32_t>{9906, 100277}), "id 100277", "cl100k_base");
  EXPECT_ERROR_MENTIONS(tok.decode(std::vector<int32_t>{100261}), "id 100261");  // an unused id
  EXPECT_ERROR_MENTIONS(tok.decode(std::vector<int32_t>{-1}), "id -1");
}

TEST(TokenizerFiles, BadPaths) {
  const std::string dir = scratch_dir("paths");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir + "/missing.tiktoken"), "missing.tiktoken", "does not exist");
  write_text(dir + "/vocab.txt", "x");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir + "/vocab.txt"), "vocab.txt", "is not a .tiktoken file");
  const std::string empty = scratch_dir("empty");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(empty), empty.c_str(), "holds no tokenizer.json");
  const std::string half = scratch_dir("half");
  fs::copy_file(tokenizer_data("gpt2-encoder.json"), half + "/encoder.json");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(half), half.c_str(), "has encoder.json but not vocab.bpe");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(half + "/encoder.json"), "pass the directory");
  const std::string both = scratch_dir("both");
  testing::tiktoken("gpt2").save(both);
  testing::cached_tokenizer(testing::gpt2_files_dir()).save(both);
  EXPECT_ERROR_MENTIONS(Tokenizer::load(both), both.c_str(), "more than one tokenizer");
}

// A scratch copy of `encoding`'s .tiktoken (rewritten by `edit`) with its meta.json.
std::string tiktoken_copy(const std::string& encoding, const std::function<std::string(std::string)>& edit) {
  const std::string dir = scratch_dir(encoding);
  write_text(dir + "/" + encoding + ".tiktoken", edit(read_text(tokenizer_data(encoding + ".tiktoken"))));
  fs::copy_file(tokenizer_data(encoding + ".meta.json"), dir + "/" + encoding + ".meta.json");
  return dir + "/" + encoding + ".tiktoken";
}

TEST(TokenizerFiles, BadTiktokenFiles) {
  // Truncated in the middle of a line.
  std::string path = tiktoken_copy("gpt2", [](std::string s) { return s.substr(0, s.size() / 2 - 3); });
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), path.c_str(), "expected 'base64-token rank'");
  // Truncated at a line end: the metadata's explicit_n_vocab catches it.
  path = tiktoken_copy("gpt2", [](std::string s) { return s.substr(0, s.find('\n', s.size() / 2) + 1); });
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), path.c_str(), "truncated?");
  // Without explicit_n_vocab, a file missing single bytes cannot encode.
  path = tiktoken_copy("cl100k_base", [](std::string s) {
    size_t pos = 0;
    for (int i = 0; i < 100; ++i) pos = s.find('\n', pos) + 1;
    return s.substr(0, pos);
  });
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), path.c_str(), "no token for the single byte");
  // Garbled base64, a rank that is not a number, a repeated rank.
  path = tiktoken_copy("gpt2", [](std::string s) { return "IQ=! 0\n" + s.substr(s.find('\n') + 1); });
  std::string line1 = path + ":1";
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), line1.c_str(), "expected 'base64-token rank'");
  path = tiktoken_copy("gpt2", [](std::string s) { return s.substr(0, s.find('\n')) + "x\n" + s.substr(s.find('\n') + 1); });
  line1 = path + ":1";
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), line1.c_str());
  path = tiktoken_copy("cl100k_base", [](std::string s) { return s + "QUJD 5\n"; });
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), path.c_str(), "id 5 is given to two tokens");
  // Another format under the .tiktoken name.
  path = tiktoken_copy("gpt2", [](std::string) { return read_text(tokenizer_data("gpt2-encoder.json")); });
  line1 = path + ":1";
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), line1.c_str(), "not a tiktoken rank file");
  path = tiktoken_copy("gpt2", [](std::string) { return std::string(); });
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), path.c_str(), "holds no tokens");
}

TEST(TokenizerFiles, BadTiktokenMetadata) {
  const std::string dir = scratch_dir("meta");
  const std::string path = dir + "/gpt2.tiktoken";
  fs::copy_file(tokenizer_data("gpt2.tiktoken"), path);
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), "gpt2.meta.json", "needs its metadata");
  const std::string meta = dir + "/gpt2.meta.json";
  write_text(meta, "{\"pat_str\": \"x\", ");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), meta.c_str(), "not valid JSON");
  write_text(meta, "{\"special_tokens\": {}}");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), meta.c_str(), "pat_str");
  write_text(meta, "{\"pat_str\": \"(unclosed\"}");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), "(unclosed", "does not compile");
  write_text(meta, "{\"pat_str\": \"\\\\s+\", \"special_tokens\": {\"<|x|>\": \"7\"}}");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), meta.c_str(), "<|x|>");
  write_text(meta, "{\"pat_str\": \"\\\\s+\", \"special_tokens\": {\"<|x|>\": 7}}");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path), "<|x|>", "id 7, which is also a rank");
  write_text(meta, "{\"pat_str\": \"\\\\s+\"}");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(path)->eod_id(), "no end-of-document token");
}

TEST(TokenizerFiles, BadGpt2Files) {
  const std::string dir = scratch_dir("gpt2");
  fs::copy_file(tokenizer_data("gpt2-encoder.json"), dir + "/encoder.json");
  write_text(dir + "/vocab.bpe", "#version: 0.2\nĠ t\nĠ a b\n");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir), "vocab.bpe:3", "expected 'left right'");
  write_text(dir + "/vocab.bpe", "#version: 0.2\nĠ t\nĠ nonsense-token\n");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir), "vocab.bpe:3", "not in");
  write_text(dir + "/vocab.bpe", "#version: 0.2\n");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir), "vocab.bpe", "no merges");
  const std::string text = read_text(tokenizer_data("gpt2-encoder.json"));
  write_text(dir + "/encoder.json", text.substr(0, text.size() / 2));
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir), "encoder.json", "not valid JSON");
  write_text(dir + "/encoder.json", "{\"a\": 0, \"b\": \"one\"}");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir), "encoder.json", "'b' needs a non-negative integer id");
  write_text(dir + "/encoder.json", "[1, 2]");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir), "encoder.json", "must be a non-empty object");
}

// A small valid tokenizer.json (the 256 bytes and one merge), with `edit` applied.
std::string tokenizer_json(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::encode(std::string(1, static_cast<char>(b)))] = b;
  vocab["ab"] = 256;
  nlohmann::json j = {
      {"added_tokens", {{{"id", 257}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b"}}}}};
  edit(j);
  write_text(dir + "/tokenizer.json", j.dump());
  return dir + "/tokenizer.json";
}

TEST(TokenizerFiles, SmallTokenizerJsonLoads) {
  const auto tok = Tokenizer::load(tokenizer_json(scratch_dir("ok"), [](nlohmann::json&) {}));
  EXPECT_EQ(tok->vocab_size(), 258);
  EXPECT_EQ(tok->encode("ab abc"), (std::vector<int32_t>{256, ' ', 256, 'c'}));
  EXPECT_EQ(tok->eod_id(), 257);
  // Merges as pairs (tokenizers >= 0.20) read the same.
  const auto pairs = Tokenizer::load(tokenizer_json(scratch_dir("pairs"), [](nlohmann::json& j) {
    j["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "b"})});
  }));
  EXPECT_EQ(pairs->encode("ab abc"), tok->encode("ab abc"));
}

TEST(TokenizerFiles, BadTokenizerJson) {
  using Edit = std::function<void(nlohmann::json&)>;
  const std::pair<Edit, std::vector<const char*>> cases[] = {
      {[](nlohmann::json& j) { j.erase("model"); }, {"no 'model' object"}},
      {[](nlohmann::json& j) { j["model"]["type"] = "WordPiece"; }, {"model type 'WordPiece'"}},
      {[](nlohmann::json& j) { j["model"].erase("merges"); }, {"'merges' array"}},
      {[](nlohmann::json& j) { j["model"]["dropout"] = 0.1; }, {"dropout"}},
      {[](nlohmann::json& j) { j["normalizer"] = {{"type", "NFC"}}; }, {"normalizer 'NFC'"}},
      {[](nlohmann::json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }, {"add_prefix_space"}},
      {[](nlohmann::json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, {"pre_tokenizer type 'Whitespace'"}},
      {[](nlohmann::json& j) { j.erase("pre_tokenizer"); }, {"no pre_tokenizer"}},
      {[](nlohmann::json& j) { j["decoder"] = {{"type", "WordPiece"}}; }, {"decoder 'WordPiece'"}},
      {[](nlohmann::json& j) { j["model"]["merges"] = {"a c d"}; }, {"merge 0", "'a c d'"}},
      {[](nlohmann::json& j) { j["model"]["merges"] = {"a zz"}; }, {"merge 0", "not in the vocab"}},
      {[](nlohmann::json& j) { j["model"]["merges"] = {"b c"}; }, {"'bc', which is not in the vocabulary"}},
      {[](nlohmann::json& j) { j["model"]["vocab"]["x y"] = 300; }, {"'x y'", "not byte-level text"}},
      {[](nlohmann::json& j) { j["model"]["vocab"]["ab"] = "256"; }, {"'ab' needs a non-negative integer id"}},
      {[](nlohmann::json& j) { j["model"]["vocab"].erase("a"); }, {"merge 0"}},
      {[](nlohmann::json& j) { j["model"]["vocab"].erase("c"); }, {"single byte 0x63"}},
      {[](nlohmann::json& j) { j["added_tokens"][0]["id"] = 256; }, {"id 256, which is already the token 'ab'"}},
      {[](nlohmann::json& j) { j["added_tokens"][0].erase("content"); }, {"non-empty 'content'"}},
      {[](nlohmann::json& j) { j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\s"}}}, {"behavior", "Removed"}}; },
       {"Split behavior 'Removed'"}},
      {[](nlohmann::json& j) { j["pre_tokenizer"]["use_regex"] = "yes"; }, {"'use_regex' must be true or false"}},
      {[](nlohmann::json& j) { j["model"]["ignore_merges"] = 1; }, {"'ignore_merges' must be true or false"}},
  };
  int i = 0;
  for (const auto& [edit, parts] : cases) {
    SCOPED_TRACE("case " + std::to_string(i++));
    const std::string path = tokenizer_json(scratch_dir("bad"), edit);
    EXPECT_THROW(Tokenizer::load(path), Error);
    const std::string msg = testing::error_of([&] { Tokenizer::load(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const char* part : parts) EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
  }
  const std::string dir = scratch_dir("garbled");
  write_text(dir + "/tokenizer.json", "{\"model\": {\"vocab\": {\"a\": 1,");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir), "tokenizer.json", "not valid JSON");
  write_text(dir + "/tokenizer.json", "[]");
  EXPECT_ERROR_MENTIONS(Tokenizer::load(dir), "tokenizer.json", "not a Hugging Face tokenizer.json");
}

}  // namespace
}  // namespace foundry
