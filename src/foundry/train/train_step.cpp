#include "foundry/train/train_step.h"

#include <cmath>

#include "foundry/ops/loss.h"

namespace foundry {

namespace {
constexpr int32_t kIgnoreIndex = -100;  // CrossEntropyArgs' default

int64_t valid_targets(const Batch& b) {
  const int32_t* t = b.targets.ptr<int32_t>();
  int64_t n = 0;
  for (int64_t i = 0; i < b.targets.numel(); ++i) n += t[i] != kIgnoreIndex;
  return n;
}

// Sums one microbatch's MoE statistics into the step's; losses enter with weight `loss_weight`.
void accumulate_moe_stats(std::vector<MoELayerStats>& sum, const std::vector<MoELayerStats>& mb, double loss_weight) {
  if (sum.empty()) {
    sum = mb;
    for (MoELayerStats& m : sum) m.aux_loss *= loss_weight, m.z_loss *= loss_weight;
    return;
  }
  for (size_t i = 0; i < mb.size(); ++i) {
    MoELayerStats& s = sum[i];
    for (size_t e = 0; e < s.tokens_per_expert.size(); ++e) s.tokens_per_expert[e] += mb[i].tokens_per_expert[e];
    s.routed += mb[i].routed;
    s.dropped += mb[i].dropped;
    s.aux_loss += loss_weight * mb[i].aux_loss;
    s.z_loss += loss_weight * mb[i].z_loss;
  }
}
// Sums the routing statistics over the data-parallel ranks (losses: the per-rank values are
// already scaled by 1 / all microbatches, so the sum is the mean over them).
void reduce_moe_stats(std::vector<MoELayerStats>& stats, Communicator& dp) {
  for (MoELayerStats& s : stats) {
    std::vector<int64_t> n = s.tokens_per_expert;
    n.push_back(s.routed);
    n.push_back(s.dropped);
    const Tensor t = Tensor::from<int64_t>({static_cast<int64_t>(n.size())}, n);
    dp.all_reduce(t.view());
    const int64_t* r = t.ptr<int64_t>();
    const size_t E = s.tokens_per_expert.size();
    std::copy(r, r + E, s.tokens_per_expert.begin());
    s.routed = r[E];
    s.dropped = r[E + 1];
    s.aux_loss = dp.all_reduce_sum(s.aux_loss);
    s.z_loss = dp.all_reduce_sum(s.z_loss);
  }
}

// Forward and backward over this rank's microbatches, the loss, token and MoE reductions over dp;
// then `reduce_and_clip` (gradient reduction and the global norm) and `apply` (the optimizer).
template <class ReduceAndClip, class Apply>
StepStats run_step(Context& ctx, GPTModel& model, std::span<const Batch> microbatches, Communicator* dp,
                   ReduceAndClip reduce_and_clip, Apply apply) {
  FOUNDRY_CHECK(!microbatches.empty(), "train_step: no microbatches");
  const int dp_size = dp ? dp->size() : 1;
  double global_valid = 0;
  for (const Batch& b : microbatches) global_valid += static_cast<double>(valid_targets(b));
  if (dp) global_valid = dp->all_reduce_sum(global_valid);
  model.params().zero_grad();
  model.begin_global_batch();
  const float aux_scale_before = ctx.aux_loss_scale;
  ctx.aux_loss_scale = 1.f / static_cast<float>(microbatches.size() * static_cast<size_t>(dp_size));
  StepStats st;
  for (const Batch& b : microbatches) {
    GPTModel::Saved saved;
    Tensor logits = model.forward(ctx, b.tokens, b.layout, saved);  // (T, V)
    // Normalised by the global batch's token count: the microbatch gradients sum to the mean.
    const CrossEntropyResult ce = cross_entropy_fused(
        {.logits = logits, .targets = b.targets, .token_count = std::max(global_valid, 1.0),
         .dlogits = logits});
    st.loss += ce.loss;
    st.tokens += b.tokens.numel();
    model.backward(ctx, logits, b.layout, saved);
    accumulate_moe_stats(st.moe, model.moe_stats(saved), ctx.aux_loss_scale);
  }
  ctx.aux_loss_scale = aux_scale_before;
  if (dp && dp_size > 1) {
    st.loss = dp->all_reduce_sum(st.loss);  // each rank's loss is already over the global tokens
    st.tokens = static_cast<int64_t>(dp->all_reduce_sum(static_cast<double>(st.tokens)));
    reduce_moe_stats(st.moe, *dp);
  }
  const GradClip clip = reduce_and_clip();
  st.grad_norm = clip.norm;
  st.applied = std::isfinite(st.loss) && std::isfinite(clip.norm);  // the same on every rank
  if (st.applied) apply(clip.coefficient);
  model.finish_optimizer_step(st.applied, dp);
  return st;
}
}  // namespace

StepStats train_step(Context& ctx, GPTModel& model, AdamW& optimizer, std::span<const Batch> microbatches,
                     float lr, float clip_grad, Communicator* dp) {
  return run_step(
      ctx, model, microbatches, dp,
      [&] {
        if (dp && dp->size() > 1) dp->all_reduce(model.params().grad_buffer());  // sum over the replicas
        return clip_grad_norm(model.params(), clip_grad);
      },
      [&](float coefficient) { optimizer.step(lr, coefficient); });
}

StepStats train_step(Context& ctx, GPTModel& model, DistributedAdamW& optimizer, std::span<const Batch> microbatches,
                     float lr, float clip_grad, Communicator& dp) {
  return run_step(
      ctx, model, microbatches, &dp, [&] { return optimizer.reduce_gradients(clip_grad); },  // reduce-scatter
      [&](float coefficient) { optimizer.step(lr, coefficient); });  // shard update + all-gather
}

double eval_loss(Context& train_ctx, const GPTModel& model, const Batch& batch) {
  Context ctx = train_ctx;
  ctx.training = false;
  GPTModel::Saved saved;
  Tensor logits = model.forward(ctx, batch.tokens, batch.layout, saved);
  return cross_entropy_fused({.logits = logits, .targets = batch.targets}).loss;
}

}  // namespace foundry
