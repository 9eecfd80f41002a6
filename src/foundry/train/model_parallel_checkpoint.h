// Checkpoints of a model split over tensor / expert / pipeline ranks. Checkpoint files hold full
// tensors under their one-process names (checkpoint/checkpoint.h), so the model-parallel save
// first assembles the one-process model on rank 0:
//   every rank sends the parameters it owns — each element of every full tensor is owned by
//   exactly one rank (train/finalize_grads.h owns_for_grad_norm: data-parallel rank 0, and tensor
//   rank 0 for replicated parameters) — with their blocks (nn/param.h ShardBlock), the AdamW
//   state of the same elements, and the buffers (router expert bias) of data- and tensor-parallel
//   rank 0; rank 0 writes each block into a one-process GPTModel / AdamW of the same config and
//   saves those. Loading needs nothing special: load_checkpoint copies each rank's blocks out of
//   the full tensors, so a checkpoint saved under one layout loads under any other (resharding by
//   global offsets), including one process.
// Rank 0 holds one full copy of the model and its optimizer state while saving.
#pragma once

#include <memory>

#include "foundry/models/gpt/gpt_model.h"
#include "foundry/optim/adamw.h"

namespace foundry {

struct FullModelState {
  std::unique_ptr<GPTModel> model;    // rank 0 only: every parameter and buffer, unsharded
  std::unique_ptr<AdamW> optimizer;   // rank 0 only, when an optimizer was given: its full state and step count
};

// Collective over model.parallel().all (every rank of the model).
FullModelState gather_full_model(const GPTModel& model, const AdamW* optimizer);

}  // namespace foundry
