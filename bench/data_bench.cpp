// Data pipeline throughput, measured in one run against the trainer it feeds:
//
//   1. preprocess: a synthetic .jsonl corpus (--mb MB of text) -> Megatron indexed dataset with a
//      byte-level tokenizer (one token per byte, so tokens/s = bytes/s; a BPE tokenizer is slower
//      and is timed by the tokenizer benchmarks, not here). Reported: MB/s, tokens/s.
//   2. loader: GPTDataset (S = 1024, one epoch) + DataLoader (B = 8, prefetch 4) drained as fast
//      as possible: batches/s of the producer thread.
//   3. trainer: train_step of configs/default.yaml's model at the same B, S (vocab 257 for the
//      byte ids), fed by the loader: steps/s, and the time next() blocked per step.
//
// The loader must never be the bottleneck: ratio = loader batches/s / trainer steps/s >> 1, and
// the blocked time per step ~ 0. Prints one JSON line per stage and a summary line.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "foundry/core/rng.h"
#include "foundry/core/threads.h"
#include "foundry/data/data_loader.h"
#include "foundry/data/gpt_dataset.h"
#include "foundry/data/preprocess.h"
#include "foundry/train/config.h"
#include "foundry/train/train_step.h"

namespace foundry {
namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string decode(std::span<const int32_t> ids) const override {
    std::string s;
    for (int32_t id : ids)
      if (id < 256) s.push_back(static_cast<char>(id));
    return s;
  }
  std::vector<int32_t> encode_with_special(std::string_view text) const override { return encode(text); }
  int32_t special_token_id(std::string_view) const override { return -1; }
  int64_t vocab_size() const override { return 257; }
  int32_t eod_id() const override { return 256; }
  std::string description() const override { return "bytes, 257 tokens"; }
  void save(const std::string&) const override { FOUNDRY_FAIL("ByteTokenizer cannot be saved"); }
};

// Deterministic pseudo-English: words from a fixed list, documents of 200..8200 characters.
void write_corpus(const std::string& path, int64_t bytes) {
  static const char* words[] = {"the", "model", "data", "token", "of", "and", "a", "training", "loss",
                                "gradient", "layer", "attention", "is", "to", "in", "sequence", "batch",
                                "expert", "router", "with", "for", "parallel", "memory", "step"};
  Tensor u = Tensor::empty({1 << 20});
  Philox(7).uniform_(u);
  const float* r = u.ptr<float>();
  int64_t k = 0;
  const auto next = [&] { return r[k++ % (1 << 20)]; };
  std::ofstream out(path, std::ios::binary);
  int64_t written = 0;
  std::string doc;
  while (written < bytes) {
    doc.clear();
    const int64_t len = 200 + static_cast<int64_t>(next() * 8000);
    while (static_cast<int64_t>(doc.size()) < len) {
      doc += words[static_cast<int>(next() * 24) % 24];
      doc += next() < 0.08f ? ". " : " ";
    }
    const std::string line = nlohmann::json{{"text", doc}}.dump() + "\n";
    out << line;
    written += static_cast<int64_t>(line.size());
  }
}

int run(int argc, char** argv) {
  int64_t mb = 24;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--mb") mb = std::stoll(argv[i + 1]);
  const std::string dir = (std::filesystem::temp_directory_path() / "foundry_data_bench").string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  write_corpus(dir + "/corpus.jsonl", mb << 20);

  // 1. preprocess
  ByteTokenizer tok;
  const PreprocessResult pre =
      preprocess(tok, {.inputs = {dir + "/corpus.jsonl"}, .output_prefix = dir + "/corpus"});
  const double pre_tok_s = static_cast<double>(pre.tokens) / pre.seconds;
  const double pre_mb_s = static_cast<double>(pre.bytes) / 1e6 / pre.seconds;
  std::printf("%s\n", nlohmann::json{{"stage", "preprocess"}, {"documents", pre.documents}, {"tokens", pre.tokens},
                                     {"seconds", pre.seconds}, {"tokens_per_s", pre_tok_s}, {"text_mb_per_s", pre_mb_s},
                                     {"threads", num_threads()}}.dump().c_str());

  // 2. loader alone
  const int64_t B = 8, S = 1024;
  auto data = std::make_shared<const IndexedDataset>(dir + "/corpus");
  auto t0 = clock_type::now();
  auto ds = std::make_shared<const GPTDataset>(data, 0, data->num_sequences(),
                                               GPTDatasetConfig{.seq_length = S, .num_samples = 0, .seed = 1234});
  const double index_s = since(t0);
  int64_t batches = 0;
  {
    DataLoader loader(ds, {.micro_batch_size = B, .prefetch = 4});
    t0 = clock_type::now();
    while (loader.batches_remaining() > 0) {
      const Batch b = loader.next();
      ++batches;
    }
  }
  const double loader_s = since(t0);
  const double loader_batches_s = static_cast<double>(batches) / loader_s;
  std::printf("%s\n", nlohmann::json{{"stage", "loader"}, {"samples", ds->size()}, {"index_build_s", index_s},
                                     {"batches", batches}, {"batches_per_s", loader_batches_s},
                                     {"tokens_per_s", loader_batches_s * static_cast<double>(B * S)}}.dump().c_str());

  // 3. trainer fed by the loader
  RunConfig cfg = RunConfig::parse(default_recipe_yaml(), "configs/default.yaml",
                                   {"model.vocab_size=257", "train.micro_batch_size=8", "train.seq_length=1024"});
  GPTModel model(cfg.model, cfg.train.seed);
  AdamW optimizer(model.params(), {.lr = cfg.train.lr, .beta1 = cfg.train.adam_beta1, .beta2 = cfg.train.adam_beta2,
                                   .eps = cfg.train.adam_eps, .weight_decay = cfg.train.weight_decay});
  Context ctx;
  DataLoader loader(ds, {.micro_batch_size = B, .prefetch = 4});
  const int warmup = 1, steps = 4;
  double step_s = 0, wait_s = 0, max_wait_s = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto w0 = clock_type::now();
    const Batch batch = loader.next();
    const double waited = since(w0);
    const auto s0 = clock_type::now();
    train_step(ctx, model, optimizer, std::span(&batch, 1), cfg.train.lr, cfg.train.clip_grad);
    if (i >= warmup) {
      step_s += since(s0);
      wait_s += waited;
      max_wait_s = std::max(max_wait_s, waited);
    }
  }
  const double steps_per_s = steps / step_s;
  std::printf("%s\n", nlohmann::json{{"stage", "trainer"}, {"model", "configs/default.yaml"}, {"batch", B}, {"seq", S},
                                     {"step_ms", 1e3 * step_s / steps}, {"steps_per_s", steps_per_s},
                                     {"next_wait_ms_mean", 1e3 * wait_s / steps},
                                     {"next_wait_ms_max", 1e3 * max_wait_s}}.dump().c_str());
  std::printf("loader %.0f batches/s vs trainer %.2f steps/s: ratio %.0fx; next() blocked %.3f ms per %.0f ms step\n",
              loader_batches_s, steps_per_s, loader_batches_s / steps_per_s, 1e3 * wait_s / steps,
              1e3 * step_s / steps);
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace foundry

int main(int argc, char** argv) {
  try {
    return foundry::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "data_bench: %s\n", e.what());
    return 1;
  }
}
