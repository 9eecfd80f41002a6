// foundry eval CKPT --data PREFIX_OR_TEXT_FILE: loss and perplexity of a checkpoint on an
// indexed dataset (every sequence, in order) or on a text file (tokenized with the
// checkpoint's tokenizer). --json prints one JSON line with the full-precision mean loss.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "foundry/cli/commands.h"
#include "foundry/data/indexed_dataset.h"
#include "foundry/train/data_setup.h"
#include "foundry/train/evaluate.h"
#include "foundry/train/pretrained.h"

namespace foundry::cli {

namespace {
std::vector<int32_t> token_stream(const std::string& data, const Pretrained& p) {
  if (std::filesystem::exists(data + ".idx") || std::filesystem::exists(data + ".bin")) {
    const IndexedDataset ds(data);
    std::vector<int32_t> stream;
    stream.reserve(static_cast<size_t>(ds.num_tokens()));
    for (int64_t i = 0; i < ds.num_sequences(); ++i) {
      const std::vector<int32_t> seq = ds.sequence(i);
      stream.insert(stream.end(), seq.begin(), seq.end());
    }
    return stream;
  }
  std::ifstream in(data, std::ios::binary);
  FOUNDRY_CHECK(in.good(), "eval: '{}' is neither an indexed dataset prefix (PREFIX.idx/.bin) nor a readable text file",
                data);
  FOUNDRY_CHECK(p.tokenizer != nullptr, "checkpoint {} holds no tokenizer to encode {}", p.dir, data);
  std::stringstream ss;
  ss << in.rdbuf();
  return p.tokenizer->encode(sanitize_utf8(ss.str()));
}
}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Loss and perplexity of a checkpoint on a dataset or text file");
  struct Options {
    std::string checkpoint, data;
    bool json = false;
    int64_t micro_batch = 0;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("checkpoint", o->checkpoint, "Checkpoint directory (or a directory holding checkpoints)")->required();
  cmd->add_option("--data", o->data, "Indexed dataset prefix or a text file")->required();
  cmd->add_option("--micro-batch", o->micro_batch, "Windows per forward (default: the recipe's micro_batch_size)");
  cmd->add_flag("--json", o->json, "Print one JSON line");
  cmd->callback([o] {
    const Pretrained p = load_pretrained(o->checkpoint);
    const std::vector<int32_t> stream = token_stream(o->data, p);
    for (int32_t id : stream)
      FOUNDRY_CHECK(id >= 0 && id < p.config.model.vocab_size, "eval: {} holds token {} outside the model's vocabulary ({})",
                    o->data, id, p.config.model.vocab_size);
    const int64_t micro = o->micro_batch > 0 ? o->micro_batch : p.config.train.micro_batch_size;
    const EvalResult r = evaluate_stream(*p.model, stream, p.config.train.seq_length, micro);
    if (o->json) {
      std::puts(nlohmann::json{{"checkpoint", p.dir}, {"step", p.step}, {"data", o->data}, {"loss", r.loss},
                               {"perplexity", r.perplexity}, {"tokens", r.tokens}}
                    .dump()
                    .c_str());
    } else {
      std::printf("%s (step %lld) on %s: loss %.4f | perplexity %.2f | %lld tokens\n", p.dir.c_str(),
                  static_cast<long long>(p.step), o->data.c_str(), r.loss, r.perplexity,
                  static_cast<long long>(r.tokens));
    }
  });
}

}  // namespace foundry::cli
