// Training checkpoints: one self-contained directory per saved iteration, with Megatron-LM's
// directory names (`megatron/training/checkpointing.py`: `iter_0000100`, the tracker file
// `latest_checkpointed_iteration.txt`) and Hugging Face's file conventions for the tensors:
//
//   root/
//     latest_checkpointed_iteration.txt     "100" (the last complete save; Megatron's tracker)
//     iter_0000100/
//       model.safetensors                   parameters under their ParamTable names, or
//       model-0000k-of-0000N.safetensors    shards + model.safetensors.index.json when large
//       optimizer.safetensors               AdamW state: exp_avg.<name>, exp_avg_sq.<name>;
//                                           metadata "step" (the optimizer's step count)
//       trainer_state.json                  the caller's JSON object plus "step"
//       tokenizer/                          written by the caller's callback (Tokenizer::save)
//       hf/                                 imported models only: Hugging Face side files (hf_convert.h)
//
// Saves are atomic: everything is written into `root/.tmp-iter_0000100-<pid>/`, every file and
// directory is fsync'ed, the directory is renamed to `iter_0000100` and root is fsync'ed, and
// only then is the tracker replaced (write + fsync + rename). A crash at any point leaves either
// no `iter_*` directory for that step or a complete one, and the tracker names only complete
// ones. Leftover temporaries are ignored by readers and removed by the next save.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "foundry/optim/adamw.h"

namespace foundry {

inline constexpr int64_t kDefaultMaxShardBytes = 5'000'000'000;  // Hugging Face's "5GB"
inline constexpr const char* kLatestCheckpointFile = "latest_checkpointed_iteration.txt";

struct CheckpointContents {
  int64_t step = 0;                   // names the directory: iter_%07d
  const ParamTable* params = nullptr;  // required: every parameter's value is saved
  const AdamW* optimizer = nullptr;    // optional: optimizer.safetensors
  // Whatever the trainer needs to resume (consumed samples, RNG states, data position, the
  // resolved config as YAML text under "config", ...). Must be an object; "step" is set to
  // `step` (a different "step" already in it is an error).
  nlohmann::json trainer_state = nlohmann::json::object();
  // Optional: writes the tokenizer into the directory it is given (Tokenizer::save).
  std::function<void(const std::string& dir)> save_tokenizer;
  // Optional: writes further files into the checkpoint directory it is given (e.g. the Hugging
  // Face side files of an imported model under hf/), before everything is fsync'ed and published.
  std::function<void(const std::string& dir)> save_extra;
  int64_t max_shard_bytes = kDefaultMaxShardBytes;
};

// "iter_0000100"
std::string checkpoint_dir_name(int64_t step);

// Saves atomically into root (created if missing) and returns the new checkpoint directory.
// Then keeps only the keep_last newest checkpoints (0 = keep all; the new one is always kept).
// Saving a step that already exists replaces it (the old directory is renamed aside first, so a
// crash in between can lose that step but never leaves a partial one).
std::string save_checkpoint(const CheckpointContents& contents, const std::string& root, int keep_last = 0);

struct CheckpointRef {
  int64_t step = 0;
  std::string dir;
};
// Complete checkpoints under root (iter_* directories holding trainer_state.json), by step.
std::vector<CheckpointRef> list_checkpoints(const std::string& root);
// The checkpoint the tracker file names when that directory exists, else the highest complete
// one; nullopt when root has none. Temporary directories are never returned.
std::optional<std::string> latest_checkpoint(const std::string& root);
// A checkpoint directory itself, or a root's latest checkpoint; throws naming path otherwise.
std::string resolve_checkpoint(const std::string& path);

struct LoadedCheckpoint {
  std::string dir;
  int64_t step = 0;
  nlohmann::json trainer_state;
  std::string tokenizer_dir;  // "" when the checkpoint holds no tokenizer
};

// Loads a checkpoint (or a root's latest) into params and, when given, optimizer. Everything is
// validated before anything is copied: every ParamTable parameter present with its dtype and
// (full) shape, no unknown tensors, and the same for the optimizer state; a mismatch is one error
// naming the parameter and the checkpoint. Values are restored bit for bit. Checkpoints hold full
// tensors: a sharded parameter (tensor / expert parallelism, nn/param.h) takes its blocks of the
// full tensor, so any layout loads a checkpoint saved under any other. partial_model: the table
// holds only some of the model (a pipeline stage): tensors it lacks are not an error.
LoadedCheckpoint load_checkpoint(const std::string& path, ParamTable& params, AdamW* optimizer = nullptr,
                                 bool partial_model = false);
// Whether a checkpoint directory holds optimizer state (optimizer.safetensors); an upcycled
// checkpoint (`foundry upcycle`) has none and training continues with a fresh optimizer.
bool has_optimizer_state(const std::string& dir);
// trainer_state.json of a checkpoint directory (an object with an integer "step").
nlohmann::json read_trainer_state(const std::string& dir);

// A human-readable summary for `foundry info PATH` (a checkpoint or a root): step, trainer
// state fields, parameter count and bytes, shards, optimizer, tokenizer, config excerpt.
// Reads only headers and trainer_state.json.
std::string describe_checkpoint(const std::string& path);

}  // namespace foundry
