#include "foundry/train/pretrained.h"

#include "foundry/checkpoint/checkpoint.h"

#include <filesystem>

namespace foundry {

std::string resolve_pretrained_checkpoint(const std::string& path) {
  // A run's output directory holds its checkpoints under checkpoints/.
  const std::string run_checkpoints = path + "/checkpoints";
  const bool is_run_dir = !std::filesystem::exists(path + "/trainer_state.json") &&
                          !std::filesystem::exists(path + "/" + kLatestCheckpointFile) &&
                          std::filesystem::is_directory(run_checkpoints);
  return resolve_checkpoint(is_run_dir ? run_checkpoints : path);
}

Pretrained load_pretrained(const std::string& path) {
  Pretrained p;
  p.dir = resolve_pretrained_checkpoint(path);
  const nlohmann::json state = read_trainer_state(p.dir);
  FOUNDRY_CHECK(state.contains("config") && state["config"].is_string(),
                "checkpoint {}: trainer_state.json holds no \"config\"", p.dir);
  p.config = RunConfig::parse(state["config"].get<std::string>(), p.dir + "/trainer_state.json");
  p.model = std::make_unique<GPTModel>(p.config.model, p.config.train.seed);
  const LoadedCheckpoint ck = load_checkpoint(p.dir, p.model->params());
  p.step = ck.step;
  if (!ck.tokenizer_dir.empty()) p.tokenizer = Tokenizer::load(ck.tokenizer_dir);
  return p;
}

}  // namespace foundry
