#include "foundry/train/data_setup.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "foundry/data/bpe_trainer.h"
#include "foundry/data/data_loader.h"
#include "foundry/data/dataset_builder.h"
#include "foundry/data/preprocess.h"
#include "foundry/train/parallel_checks.h"

namespace fs = std::filesystem;

namespace foundry {

namespace {

// A DataLoader as a BatchSource; seeking restarts the loader at the given position.
class LoaderBatchSource final : public BatchSource {
 public:
  LoaderBatchSource(std::shared_ptr<const SampleDataset> dataset, int64_t micro_batch)
      : dataset_(std::move(dataset)), micro_batch_(micro_batch) {
    seek(0);
  }
  Batch next() override { return loader_->next(); }
  int64_t consumed_samples() const override { return loader_->consumed_samples(); }
  void seek(int64_t consumed) override {
    loader_.reset();  // joins the old prefetch thread first
    loader_ = std::make_unique<DataLoader>(
        dataset_, DataLoaderConfig{.micro_batch_size = micro_batch_, .consumed_samples = consumed});
  }

 private:
  std::shared_ptr<const SampleDataset> dataset_;
  int64_t micro_batch_;
  std::unique_ptr<DataLoader> loader_;
};

// Files named by text_files: a directory stands for its regular files (sorted; the fortune
// package's index files *.dat and *.u8 are skipped).
std::vector<std::string> expand_text_files(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    FOUNDRY_CHECK(fs::exists(p), "data.text_files: '{}' does not exist", p);
    if (!fs::is_directory(p)) {
      files.push_back(p);
      continue;
    }
    std::vector<std::string> in_dir;
    for (const auto& e : fs::directory_iterator(p)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && ext != ".dat" && ext != ".u8") in_dir.push_back(e.path().string());
    }
    std::sort(in_dir.begin(), in_dir.end());
    FOUNDRY_CHECK(!in_dir.empty(), "data.text_files: directory '{}' holds no text files", p);
    files.insert(files.end(), in_dir.begin(), in_dir.end());
  }
  return files;
}

std::vector<std::string> read_documents(const std::vector<std::string>& files, const std::string& separator) {
  std::vector<std::string> docs;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    FOUNDRY_CHECK(in.good(), "data.text_files: cannot read '{}'", f);
    std::string doc, line;
    auto flush = [&] {
      if (doc.find_first_not_of(" \t\r\n") != std::string::npos) docs.push_back(sanitize_utf8(doc));
      doc.clear();
    };
    while (std::getline(in, line)) {
      if (!separator.empty() && line == separator) {
        flush();
        continue;
      }
      doc += line;
      doc += '\n';
    }
    flush();
  }
  return docs;
}

}  // namespace

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && len > 1) {
      // Reject overlong forms, surrogates and code points above U+10FFFF.
      uint32_t cp = c & (0xff >> (len + 1));
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
      const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= min_cp[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";  // U+FFFD
      ++i;
      while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) ++i;  // rest of the subpart
    }
  }
  return out;
}

std::string prepare_text_data(const RunConfig& cfg, std::FILE* log) {
  const fs::path dir = fs::path(cfg.train.output_dir) / "data";
  const std::string prefix = (dir / "corpus").string();
  if (fs::exists(prefix + ".idx") && fs::exists(prefix + ".bin")) return prefix;
  fs::create_directories(dir);
  const auto files = expand_text_files(cfg.data.text_files);
  const auto docs = read_documents(files, cfg.data.text_document_separator);
  FOUNDRY_CHECK(!docs.empty(), "data.text_files: no text found in {} files", files.size());
  // The documents as loose JSON, the input format of preprocessing.
  const std::string jsonl = (dir / "corpus.jsonl").string();
  {
    std::ofstream out(jsonl, std::ios::binary);
    for (const auto& d : docs) out << nlohmann::json{{"text", d}}.dump() << '\n';
    FOUNDRY_CHECK(out.good(), "cannot write {}", jsonl);
  }
  std::unique_ptr<Tokenizer> tokenizer;
  const std::string tokenizer_dir = (dir / "tokenizer").string();
  if (!cfg.data.tokenizer_model.empty()) {
    tokenizer = Tokenizer::load(cfg.data.tokenizer_model);
  } else if (fs::exists(tokenizer_dir)) {
    tokenizer = Tokenizer::load(tokenizer_dir);
  } else {
    std::fprintf(log, "training a %lld-token byte-level BPE tokenizer on %zu documents from %zu files\n",
                 static_cast<long long>(cfg.data.tokenizer_vocab_size), docs.size(), files.size());
    std::fflush(log);
    BpeTrainer trainer({.vocab_size = cfg.data.tokenizer_vocab_size});
    trainer.add_texts(docs);
    tokenizer = trainer.train();
    tokenizer->save(tokenizer_dir);
  }
  const PreprocessResult r = preprocess(*tokenizer, {.inputs = {jsonl}, .output_prefix = prefix});
  std::fprintf(log, "preprocessed %lld documents into %lld tokens (%s.bin)\n", static_cast<long long>(r.documents),
               static_cast<long long>(r.tokens), prefix.c_str());
  std::fflush(log);
  return prefix;
}

TrainingData build_training_data(RunConfig& cfg, std::FILE* log) {
  TrainingData out;
  const TrainConfig& t = cfg.train;
  const int64_t global_batch = t.micro_batch_size * t.num_microbatches();
  if (cfg.data.mock_data) {
    FOUNDRY_CHECK(cfg.model.vocab_size > 0, "model.vocab_size must be set with data.mock_data");
    out.data.train = std::make_unique<SyntheticBatchSource>(t.micro_batch_size, t.seq_length, cfg.model.vocab_size, t.seed);
    out.data.valid = std::make_unique<SyntheticBatchSource>(t.micro_batch_size, t.seq_length, cfg.model.vocab_size, t.seed + 1);
    out.description = "synthetic successor-grammar corpus (data.mock_data)";
    return out;
  }
  std::vector<std::string> data_path = cfg.data.data_path;
  if (data_path.empty()) {
    FOUNDRY_CHECK(!cfg.data.text_files.empty(),
                  "no training data: set data.data_path (indexed datasets), data.text_files (raw text) or "
                  "data.mock_data=true");
    data_path = {prepare_text_data(cfg, log)};
    const std::string prepared_tokenizer = cfg.train.output_dir + "/data/tokenizer";
    out.tokenizer = Tokenizer::load(cfg.data.tokenizer_model.empty() ? prepared_tokenizer : cfg.data.tokenizer_model);
  } else {
    FOUNDRY_CHECK(!cfg.data.tokenizer_model.empty() || cfg.model.vocab_size > 0,
                  "data.data_path needs data.tokenizer_model or an explicit model.vocab_size");
    if (!cfg.data.tokenizer_model.empty()) out.tokenizer = Tokenizer::load(cfg.data.tokenizer_model);
  }
  if (out.tokenizer) {
    // Megatron's _vocab_size_with_padding: a multiple of 128 x tensor-parallel size.
    const int64_t padded = padded_vocab_size(out.tokenizer->vocab_size(), 128, cfg.parallel.tensor_model_parallel_size);
    if (cfg.model.vocab_size == 0) cfg.model.vocab_size = padded;
  }
  const int64_t evals = t.eval_interval > 0 ? t.train_iters / t.eval_interval + 1 : 0;
  const auto datasets = build_gpt_datasets(
      {.blend = parse_data_path(data_path), .split = cfg.data.split, .seq_length = t.seq_length, .seed = t.seed},
      {t.train_iters * global_batch, evals * t.eval_iters * t.micro_batch_size, 0});
  FOUNDRY_CHECK(datasets[0] != nullptr, "data.split '{}' leaves no training documents", cfg.data.split);
  out.data.train = std::make_unique<LoaderBatchSource>(datasets[0], t.micro_batch_size);
  if (datasets[1]) out.data.valid = std::make_unique<LoaderBatchSource>(datasets[1], t.micro_batch_size);
  out.description = datasets[0]->describe();
  return out;
}

}  // namespace foundry
