#include "foundry/train/train_step.h"

#include "foundry/ops/loss.h"

namespace foundry {

StepStats train_step(Context& ctx, GPTModel& model, AdamW& optimizer, const Batch& batch, float lr,
                     float clip_grad) {
  model.params().zero_grad();
  GPTModel::Saved saved;
  Tensor logits = model.forward(ctx, batch.tokens, batch.layout, saved);  // (T, V)
  const CrossEntropyResult ce =
      cross_entropy_fused({.logits = logits, .targets = batch.targets, .dlogits = logits});
  model.backward(ctx, logits, batch.layout, saved);
  const GradClip clip = clip_grad_norm(model.params(), clip_grad);
  optimizer.step(lr, clip.coefficient);
  return {.loss = ce.loss, .grad_norm = clip.norm, .tokens = batch.tokens.numel()};
}

}  // namespace foundry
