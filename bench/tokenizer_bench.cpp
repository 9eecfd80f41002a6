// Tokenizer throughput: MB/s of UTF-8 text encoded per thread with GPT-2 (tiktoken ranks, and
// the encoder.json + vocab.bpe merge list) and Llama 3 (tiktoken ranks), decode MB/s, the
// parallel speedup of Tokenizer::encode_batch on 2 threads over 1, and the time to train a
// 4096-token BPE on the corpus.
//
// Corpus: the fortunes of Debian's `fortunes` package (/usr/share/games/fortunes, about 2.5 MB
// of English quotes, one document per fortune) when installed, else about 2.5 MB of generated
// English-like prose. Tokenizer files: $FOUNDRY_SHARED_DATA_DIR/tokenizers (default ../shared/data).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "foundry/data/bpe_trainer.h"
#include "foundry/data/tokenizer.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;

std::string data_dir() {
  const char* env = std::getenv("FOUNDRY_SHARED_DATA_DIR");
  return std::string(env && *env ? env : FOUNDRY_SHARED_DATA_DIR) + "/tokenizers/";
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string generated_prose(size_t bytes) {
  static const char* kWords[] = {"the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was",
                                 "for", "on", "are", "with", "as", "his", "they", "be", "at", "one", "have",
                                 "this", "from", "or", "had", "by", "word", "but", "what", "some", "we", "can",
                                 "out", "other", "were", "all", "there", "when", "up", "use", "your", "how",
                                 "said", "each", "she", "which", "do", "their", "time", "if", "will", "way",
                                 "about", "many", "then", "them", "would", "write", "like", "so", "these",
                                 "her", "long", "make", "thing", "see", "him", "two", "has", "look", "more",
                                 "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people",
                                 "my", "over", "know", "water", "than", "call", "first", "who", "may", "down",
                                 "side", "been", "now", "find", "don't", "it's", "tokenizer", "gradient"};
  std::mt19937 rng(42);
  std::string text;
  while (text.size() < bytes) {
    const size_t n = 5 + rng() % 16;
    for (size_t w = 0; w < n; ++w) {
      std::string word = rng() % 40 == 0 ? std::to_string(rng() % 2000) : kWords[rng() % std::size(kWords)];
      if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
      text += word + (w + 1 < n ? (rng() % 12 == 0 ? ", " : " ") : rng() % 10 == 0 ? "?" : ".");
    }
    text += rng() % 6 == 0 ? "\n%\n" : " ";
  }
  return text;
}

struct Corpus {
  std::string name;
  std::string text;
  std::vector<std::string> docs;  // separated by "\n%\n", as in the fortune files
  Corpus() {
    const fs::path dir = "/usr/share/games/fortunes";
    std::vector<fs::path> files;
    if (fs::is_directory(dir))
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && !e.is_symlink() && e.path().extension() != ".dat") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) text += read(f);
    name = files.empty() ? "generated prose" : "fortunes";
    if (files.empty()) text = generated_prose(2500000);
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find("\n%\n", pos);
      if (end == std::string::npos) end = text.size();
      if (end > pos) docs.push_back(text.substr(pos, end - pos));
      pos = end + 3;
    }
  }
};

const Corpus& corpus() {
  static const Corpus c;
  return c;
}

const Tokenizer& tokenizer(const std::string& which) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[which];
  if (!slot) {
    if (which == "gpt2-files") {  // encoder.json + vocab.bpe under their canonical names
      const fs::path dir = fs::temp_directory_path() / "foundry_tokenizer_bench_gpt2";
      fs::create_directories(dir);
      fs::copy_file(data_dir() + "gpt2-encoder.json", dir / "encoder.json", fs::copy_options::overwrite_existing);
      fs::copy_file(data_dir() + "gpt2-vocab.bpe", dir / "vocab.bpe", fs::copy_options::overwrite_existing);
      slot = Tokenizer::load(dir.string());
    } else {
      slot = Tokenizer::load(data_dir() + which + ".tiktoken");
    }
  }
  return *slot;
}

void set_label(benchmark::State& state, const Tokenizer& tok) {
  state.SetLabel(corpus().name + ", " + tok.description());
}

// One thread encoding the whole corpus as one text: MB/s per thread.
void BM_Encode(benchmark::State& state, const std::string& which) {
  const Tokenizer& tok = tokenizer(which);
  const std::string& text = corpus().text;
  omp_set_num_threads(1);
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok.encode(text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  const double bytes = static_cast<double>(text.size()) * static_cast<double>(state.iterations());
  state.counters["MB"] = benchmark::Counter(bytes / 1e6, benchmark::Counter::kIsRate);
  state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(tokens);
  set_label(state, tok);
}

// encode_batch over the corpus's documents on state.range(0) OpenMP threads (wall clock).
void BM_EncodeBatch(benchmark::State& state, const std::string& which) {
  const Tokenizer& tok = tokenizer(which);
  const auto& docs = corpus().docs;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    const auto ids = tok.encode_batch(docs);
    benchmark::DoNotOptimize(ids.data());
  }
  omp_set_num_threads(saved);
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  state.counters["MB"] =
      benchmark::Counter(static_cast<double>(bytes) * static_cast<double>(state.iterations()) / 1e6,
                         benchmark::Counter::kIsRate);
  set_label(state, tok);
}

void BM_Decode(benchmark::State& state, const std::string& which) {
  const Tokenizer& tok = tokenizer(which);
  const auto ids = tok.encode(corpus().text);
  for (auto _ : state) {
    const std::string text = tok.decode(ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["MB"] =
      benchmark::Counter(static_cast<double>(corpus().text.size()) * static_cast<double>(state.iterations()) / 1e6,
                         benchmark::Counter::kIsRate);
  set_label(state, tok);
}

// Training a 4096-token byte-level BPE on the whole corpus (all threads for the counting).
void BM_Train4096(benchmark::State& state) {
  int64_t words = 0;
  for (auto _ : state) {
    BpeTrainer trainer({.vocab_size = 4096});
    trainer.add_texts(corpus().docs);
    words = trainer.distinct_words();
    const auto tok = trainer.train();
    benchmark::DoNotOptimize(tok.get());
  }
  state.counters["distinct_words"] = static_cast<double>(words);
  state.SetLabel(corpus().name + ", " + std::to_string(corpus().text.size()) + " bytes");
}

BENCHMARK_CAPTURE(BM_Encode, gpt2, std::string("gpt2"))->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK_CAPTURE(BM_Encode, gpt2_files, std::string("gpt2-files"))->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK_CAPTURE(BM_Encode, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK_CAPTURE(BM_EncodeBatch, gpt2, std::string("gpt2"))
    ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_EncodeBatch, llama3, std::string("llama3"))
    ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_Train4096)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace
}  // namespace foundry

BENCHMARK_MAIN();
