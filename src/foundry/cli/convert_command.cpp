// foundry convert: Hugging Face model directories in and out (checkpoint/hf/hf_convert.h).
//   foundry convert --from-hf HF_DIR --to ROOT          -> ROOT/iter_0000000 (a foundry checkpoint)
//   foundry convert --from CKPT --to-hf HF_DIR [--dtype bfloat16|float16|float32]
//                   [--architecture llama|mixtral|qwen2|qwen3|qwen3_moe] [--max-shard-size 5GB]
#include <cctype>

#include "foundry/checkpoint/hf/hf_convert.h"
#include "foundry/cli/commands.h"
#include "foundry/core/check.h"

namespace foundry::cli {

namespace {
// "5GB", "500MB", "200KB", "123" (bytes), decimal units as transformers' max_shard_size.
int64_t parse_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  FOUNDRY_CHECK(i > 0, "convert: --max-shard-size '{}' is not a size like 5GB, 500MB or 1000000", text);
  const double v = std::stod(text.substr(0, i));
  std::string unit = text.substr(i);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double scale = 1;
  if (unit == "KB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else FOUNDRY_CHECK(unit.empty() || unit == "B", "convert: --max-shard-size unit '{}' is not B, KB, MB or GB", unit);
  FOUNDRY_CHECK(v * scale >= 1, "convert: --max-shard-size '{}' must be positive", text);
  return static_cast<int64_t>(v * scale);
}
}  // namespace

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "Import a Hugging Face model directory or export a checkpoint to one");
  struct Options {
    std::string from_hf, to, from, to_hf, dtype, architecture, max_shard = "5GB";
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--from-hf", o->from_hf, "Hugging Face model directory to import (config.json, safetensors)");
  cmd->add_option("--to", o->to, "Checkpoint root to write the imported model into (iter_0000000)");
  cmd->add_option("--from", o->from, "Checkpoint (or root, or run directory) to export");
  cmd->add_option("--to-hf", o->to_hf, "Directory to write the Hugging Face model into (new or empty)");
  cmd->add_option("--dtype", o->dtype, "Export weight dtype: bfloat16, float16 or float32 (default: as imported, else float32)");
  cmd->add_option("--architecture", o->architecture,
                  "Export as llama, mixtral, qwen2, qwen3 or qwen3_moe (default: as imported, else from the model)");
  cmd->add_option("--max-shard-size", o->max_shard, "Export shard size (default 5GB, as transformers)");
  cmd->callback([o] {
    const bool import = !o->from_hf.empty() || !o->to.empty();
    const bool export_ = !o->from.empty() || !o->to_hf.empty();
    FOUNDRY_CHECK(import != export_, "convert: give either --from-hf DIR --to ROOT or --from CKPT --to-hf DIR");
    if (import) {
      FOUNDRY_CHECK(!o->from_hf.empty() && !o->to.empty(), "convert: --from-hf and --to go together");
      FOUNDRY_CHECK(o->dtype.empty() && o->architecture.empty(), "convert: --dtype and --architecture apply to --to-hf");
      const std::string dir = import_hf_checkpoint(o->from_hf, o->to);
      std::printf("imported %s -> %s\n", o->from_hf.c_str(), dir.c_str());
      return;
    }
    FOUNDRY_CHECK(!o->from.empty() && !o->to_hf.empty(), "convert: --from and --to-hf go together");
    export_hf_checkpoint(o->from, o->to_hf,
                         {.architecture = o->architecture, .dtype = o->dtype, .max_shard_bytes = parse_size(o->max_shard)});
    std::printf("exported %s -> %s\n", o->from.c_str(), o->to_hf.c_str());
  });
}

}  // namespace foundry::cli
