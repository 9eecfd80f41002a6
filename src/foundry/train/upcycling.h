// Dense -> MoE upcycling from checkpoints (the conversion itself: models/gpt/upcycle.h).
//   offline (`foundry upcycle`):   read the dense checkpoint, build the one-process MoE model, convert,
//                                  save a checkpoint without optimizer state whose trainer_state holds
//                                  the MoE RunConfig, the dense step / consumed samples / RNG and an
//                                  "upcycled_from" record; `foundry train train.load=...` continues.
//   online (model.upcycle_from):   the Trainer builds its (parallel) MoE model and every rank converts
//                                  the blocks it holds straight from the dense checkpoint files
//                                  (Llama-3 MoE paper §3.1, NeMo's online upcycling; Megatron's
//                                  --moe-use-upcycling), when the run has no checkpoint yet.
// Both take the data position and RNG from the dense checkpoint and start AdamW fresh (Megatron's
// upcycling forces --no-load-optim): the optimizer's step count restarts at 0, so the LR schedule
// (warmup, decay) restarts too — the papers' recipe of resetting the LR to a peak.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "foundry/models/gpt/upcycle.h"
#include "foundry/train/config.h"

namespace foundry {

struct DenseCheckpoint {
  std::string dir;              // the checkpoint directory
  int64_t step = 0;
  nlohmann::json trainer_state;
  RunConfig config;             // the dense run's (from trainer_state "config")
  GPTConfig model;              // config.model, resolved
};
// path: a checkpoint directory, a root holding them (its latest) or a run's output directory.
DenseCheckpoint read_dense_checkpoint(const std::string& path);

// The model tensors of a checkpoint directory (checkpoint/safetensors.h ShardedSafetensors), read
// on demand (only the tensors asked for); bf16 / f16 tensors are widened to f32.
DenseSource dense_checkpoint_source(const std::string& checkpoint_dir);

// The "upcycled_from" record: dense checkpoint and step, the options, c and the per-weight scales.
nlohmann::json upcycled_from_record(const DenseCheckpoint& dense, const UpcycleOptions& o, const UpcycleScales& s,
                                    bool online);

struct OfflineUpcycle {
  std::string dense;      // DENSE_CKPT (any form read_dense_checkpoint takes)
  UpcycleOptions options;
  std::optional<uint64_t> seed;  // the router init's seed (and the MoE run's train.seed); default: the dense run's
  std::string out;        // MOE_ROOT: must not hold checkpoints yet
};
struct OfflineUpcycleResult {
  std::string checkpoint_dir;  // the written checkpoint
  RunConfig config;            // the MoE run config stored in it
  UpcycleScales scales;
  int64_t step = 0;
};
// `foundry upcycle`: converts in one process and saves atomically (checkpoint/checkpoint.h).
OfflineUpcycleResult upcycle_checkpoint(const OfflineUpcycle& job);

}  // namespace foundry
