// foundry tokenizer encode|decode|train|info: the tokenizers of src/foundry/data on the command
// line. encode reads UTF-8 text on stdin and prints the ids as a JSON array (with --jsonl, one
// array per {"text": ...} line); decode reads such an array and writes the text; train learns a byte-level BPE (bpe_trainer.h) from .txt / .jsonl
// files and writes DIR/tokenizer.json.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "foundry/cli/commands.h"
#include "foundry/core/check.h"
#include "foundry/data/bpe_trainer.h"
#include "foundry/data/tokenizer.h"

namespace foundry::cli {

namespace {

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  FOUNDRY_CHECK(!std::cin.bad(), "tokenizer: cannot read stdin");
  return s;
}

std::string json_ids(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
  return out + "]\n";
}

void run_encode(const std::string& path, bool special, bool jsonl) {
  const auto tok = Tokenizer::load(path);
  const std::string text = read_stdin();
  if (!jsonl) {
    const std::string out = json_ids(special ? tok->encode_with_special(text) : tok->encode(text));
    std::fwrite(out.data(), 1, out.size(), stdout);
    return;
  }
  FOUNDRY_CHECK(!special, "tokenizer encode: --special and --jsonl do not combine");
  std::vector<std::string> docs;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      FOUNDRY_FAIL("tokenizer encode: stdin line {} is not JSON: {}", line_no, e.what());
    }
    FOUNDRY_CHECK(doc.is_object() && doc.contains("text") && doc["text"].is_string(),
                  "tokenizer encode: stdin line {}: expected an object with a string field \"text\"", line_no);
    docs.push_back(doc["text"].get<std::string>());
  }
  for (const auto& ids : tok->encode_batch(docs)) {
    const std::string out = json_ids(ids);
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
}

void run_decode(const std::string& path) {
  const auto tok = Tokenizer::load(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_stdin());
  } catch (const nlohmann::json::exception& e) {
    FOUNDRY_FAIL("tokenizer decode: stdin is not a JSON array of token ids: {}", e.what());
  }
  FOUNDRY_CHECK(j.is_array(), "tokenizer decode: stdin is not a JSON array of token ids");
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    FOUNDRY_CHECK(j[i].is_number_integer() && j[i].get<int64_t>() >= INT32_MIN && j[i].get<int64_t>() <= INT32_MAX,
                  "tokenizer decode: element {} ({}) is not an integer token id", i, j[i].dump());
    ids.push_back(j[i].get<int32_t>());
  }
  const std::string text = tok->decode(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

// Feeds one input file to the trainer: a .txt file is one text; a .jsonl file holds one JSON
// object per line whose "text" field is a document.
void add_input(BpeTrainer& trainer, const std::string& path) {
  namespace fs = std::filesystem;
  FOUNDRY_CHECK(fs::is_regular_file(path), "tokenizer train: input '{}' does not exist or is not a file", path);
  const std::string ext = fs::path(path).extension().string();
  std::ifstream in(path, std::ios::binary);
  FOUNDRY_CHECK(in.good(), "tokenizer train: cannot open '{}'", path);
  if (ext == ".txt") {
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    trainer.add_text(text);
    return;
  }
  FOUNDRY_CHECK(ext == ".jsonl", "tokenizer train: input '{}' is neither .txt nor .jsonl", path);
  std::vector<std::string> batch;
  size_t batch_bytes = 0, line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      FOUNDRY_FAIL("{}:{}: not a JSON line: {}", path, line_no, e.what());
    }
    FOUNDRY_CHECK(doc.is_object() && doc.contains("text") && doc["text"].is_string(),
                  "{}:{}: expected an object with a string field \"text\"", path, line_no);
    batch.push_back(doc["text"].get<std::string>());
    batch_bytes += batch.back().size();
    if (batch_bytes >= (64u << 20)) {
      trainer.add_texts(batch);
      batch.clear();
      batch_bytes = 0;
    }
  }
  trainer.add_texts(batch);
}

void run_train(const std::vector<std::string>& inputs, int64_t vocab_size, const std::string& output,
               const std::vector<std::string>& special, const std::string& pattern, int64_t min_frequency) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  BpeTrainerOptions options;
  options.vocab_size = vocab_size;
  options.special_tokens = special;
  options.min_frequency = min_frequency;
  const bool named = pattern == "gpt2" || pattern == "cl100k" || pattern == "o200k" || pattern == "llama3";
  options.pattern = named ? pretokenizer_pattern(pattern) : pattern;
  BpeTrainer trainer(options);
  for (const std::string& path : inputs) add_input(trainer, path);
  FOUNDRY_CHECK(trainer.bytes_counted() > 0, "tokenizer train: the inputs hold no text");
  const auto tok = trainer.train();
  tok->save(output);
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  std::printf("trained %lld tokens (%lld merges, %zu special) on %.2f MB (%lld distinct words) in %.2f s -> %s\n",
              static_cast<long long>(tok->vocab_size()), static_cast<long long>(tok->spec().bpe.merges().size()),
              special.size(), static_cast<double>(trainer.bytes_counted()) / 1e6,
              static_cast<long long>(trainer.distinct_words()), seconds,
              (std::filesystem::path(output) / "tokenizer.json").string().c_str());
}

}  // namespace

void add_tokenizer_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenizer", "Encode, decode and train tokenizers (tiktoken, GPT-2, tokenizer.json)");
  cmd->require_subcommand(1);
  const char* path_help = "a .tiktoken file (.meta.json beside it), a tokenizer.json, or a directory with GPT-2's "
                          "encoder.json + vocab.bpe";

  auto path = std::make_shared<std::string>();
  auto special = std::make_shared<bool>(false);
  auto* enc = cmd->add_subcommand("encode", "Read UTF-8 text on stdin, print its token ids as a JSON array");
  enc->add_option("--tokenizer", *path, path_help)->required();
  auto jsonl = std::make_shared<bool>(false);
  enc->add_flag("--special", *special, "Recognise special-token strings (e.g. <|endoftext|>) in the text");
  enc->add_flag("--jsonl", *jsonl, "stdin holds JSON lines {\"text\": ...}: print one array per line (in parallel)");
  enc->callback([path, special, jsonl] { run_encode(*path, *special, *jsonl); });

  auto* dec = cmd->add_subcommand("decode", "Read a JSON array of token ids on stdin, write the text");
  dec->add_option("--tokenizer", *path, path_help)->required();
  dec->callback([path] { run_decode(*path); });

  auto* info = cmd->add_subcommand("info", "Print the tokenizer's description, vocabulary size and end-of-document id");
  info->add_option("--tokenizer", *path, path_help)->required();
  info->callback([path] {
    const auto tok = Tokenizer::load(*path);
    std::printf("%s\nvocab_size: %lld\n", tok->description().c_str(), static_cast<long long>(tok->vocab_size()));
    try {
      std::printf("eod_id: %d\n", tok->eod_id());
    } catch (const Error&) {
      std::printf("eod_id: none\n");
    }
  });

  struct TrainArgs {
    std::vector<std::string> inputs;
    int64_t vocab_size = 4096;
    std::string output;
    std::vector<std::string> special;  // <|endoftext|> unless --special-tokens is given (maybe empty)
    std::string pattern = "llama3";
    int64_t min_frequency = 2;
  };
  auto t = std::make_shared<TrainArgs>();
  auto* train = cmd->add_subcommand("train", "Train a byte-level BPE on .txt / .jsonl files, write DIR/tokenizer.json");
  train->add_option("--input", t->inputs, "Training text: .txt files, or .jsonl with a \"text\" field")
      ->required()
      ->expected(1, -1);
  train->add_option("--vocab-size", t->vocab_size, "Tokens in all: 256 bytes + merges + special tokens")->required();
  train->add_option("--output", t->output, "Directory to write tokenizer.json into")->required();
  auto* special_opt = train->add_option("--special-tokens", t->special,
                                        "Special tokens appended after the learned ones (default <|endoftext|>; "
                                        "none when the option has no value)")
                          ->expected(0, -1);
  train->add_option("--pattern", t->pattern, "Pre-tokenization regex, or gpt2 | cl100k | o200k | llama3")
      ->default_str("llama3");
  train->add_option("--min-frequency", t->min_frequency, "Merge only pairs seen at least this often")
      ->default_str("2");
  train->callback([t, special_opt] {
    if (special_opt->count() == 0) t->special = {"<|endoftext|>"};
    std::erase(t->special, std::string());  // the option given without a value: no special tokens
    run_train(t->inputs, t->vocab_size, t->output, t->special, t->pattern, t->min_frequency);
  });
}

}  // namespace foundry::cli
