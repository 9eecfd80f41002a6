// One optimizer step of a GPT model on one batch: zero gradients, forward, fused cross-entropy
// (the logits buffer becomes dlogits in place), backward, global-norm clipping, AdamW.
#pragma once

#include "foundry/optim/adamw.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/models/gpt/gpt_model.h"

namespace foundry {

struct StepStats {
  double loss = 0.0;       // mean cross-entropy over the batch's tokens
  double grad_norm = 0.0;  // before clipping
  int64_t tokens = 0;
};

StepStats train_step(Context& ctx, GPTModel& model, AdamW& optimizer, const Batch& batch, float lr,
                     float clip_grad);

}  // namespace foundry
