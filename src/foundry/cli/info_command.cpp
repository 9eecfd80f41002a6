// foundry info [PATH]: without PATH, what this build has and what the machine reaches; with
// PATH, a summary of a checkpoint (or a run / checkpoint root), an indexed dataset prefix
// (documents, sequences, tokens, dtype) or a tokenizer.
#include <filesystem>

#include "foundry/checkpoint/checkpoint.h"
#include "foundry/cli/commands.h"
#include "foundry/core/threads.h"
#include "foundry/data/indexed_dataset.h"
#include "foundry/data/tokenizer.h"
#include "foundry/ops/gemm.h"

namespace fs = std::filesystem;

namespace foundry::cli {

namespace {
void describe_machine() {
  std::printf("foundry %s\n", FOUNDRY_VERSION);
  std::printf("threads: %d\n", num_threads());
  std::printf("CUDA devices: %d\n", cuda_device_count());
  std::printf("cpu GEMM peak f32:  %.1f GFLOP/s\n", gemm_peak_gflops(DType::f32, Device::cpu(), 0.5));
  std::printf("cpu GEMM peak bf16: %.1f GFLOP/s\n", gemm_peak_gflops(DType::bf16, Device::cpu(), 0.5));
}

void describe_path(const std::string& path) {
  if (fs::exists(path + ".idx") || fs::exists(path + ".bin")) {
    std::printf("%s\n", IndexedDataset(path).describe().c_str());
    return;
  }
  FOUNDRY_CHECK(fs::exists(path), "info: '{}' does not exist (nor {}.idx)", path, path);
  const bool checkpoint_like = fs::exists(path + "/trainer_state.json") || fs::exists(path + "/" + kLatestCheckpointFile) ||
                               fs::is_directory(path + "/checkpoints");
  if (checkpoint_like) {
    const std::string root = fs::is_directory(path + "/checkpoints") && !fs::exists(path + "/trainer_state.json")
                                 ? path + "/checkpoints"
                                 : path;
    std::printf("%s\n", describe_checkpoint(root).c_str());
    return;
  }
  std::printf("%s\n", Tokenizer::load(path)->description().c_str());
}
}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info", "Summarise a checkpoint, dataset prefix or tokenizer; without PATH, the build and machine");
  auto path = std::make_shared<std::string>();
  cmd->add_option("path", *path, "Checkpoint (or run) directory, indexed dataset prefix, or tokenizer");
  cmd->callback([path] { path->empty() ? describe_machine() : describe_path(*path); });
}

}  // namespace foundry::cli
