// One optimizer step of a GPT model over a global batch of microbatches (gradient accumulation):
// zero gradients; per microbatch: forward, fused cross-entropy (the logits buffer becomes
// dlogits in place), backward; global-norm clipping; AdamW. The loss is the mean over every
// valid target token of the global batch, so accumulating k microbatches gives the same update
// as one microbatch k times larger. A non-finite loss or gradient norm is never applied: the
// step reports it and leaves parameters and optimizer state untouched.
// MoE models (Megatron semantics): the auxiliary losses' gradients enter scaled by
// 1 / num_microbatches (MoEAuxLossAutoScaler; ctx.aux_loss_scale), global_aux_loss counts span the
// global batch, and the aux-loss-free expert bias is updated once per applied step.
// Data parallelism (dp != nullptr, Megatron's DDP): each rank passes its own microbatches of the
// global batch; the valid-token count, the loss and the gradients are summed over dp (the loss
// is normalised by the global batch's tokens, so the sum is the mean over the global batch), the
// MoE auxiliary-loss scale is 1 / (microbatches over all ranks) and the expert-bias counts are
// summed over dp before the update. Every rank then takes the same optimizer step, so the
// replicas stay identical and the result equals one process running the whole global batch.
#pragma once

#include <span>

#include "foundry/comm/communicator.h"
#include "foundry/data/batch.h"
#include "foundry/models/gpt/gpt_model.h"
#include "foundry/optim/adamw.h"
#include "foundry/optim/distributed_optimizer.h"

namespace foundry {

struct StepStats {
  double loss = 0.0;       // mean cross-entropy over the global batch's valid tokens
  double grad_norm = 0.0;  // before clipping
  int64_t tokens = 0;      // tokens processed (all positions, all data-parallel ranks)
  bool applied = true;     // false when the loss or gradient was not finite
  // MoE: per MoE layer, routing statistics summed over the microbatches (tokens per expert,
  // routed and dropped selections) and auxiliary losses averaged over them.
  std::vector<MoELayerStats> moe;
  // With DDPConfig::overlap_grad_reduce: gradient buckets of the step, and how many of them had
  // started during the backward (the rest start at its end).
  int grad_buckets = 0;
  int grad_buckets_overlapped = 0;
};

// Megatron's DistributedDataParallelConfig: with overlap_grad_reduce the data-parallel gradient
// sums run in buckets of about bucket_size bytes (optim/grad_buckets.h), each started as soon as
// the last microbatch's backward has finished its parameters, instead of one all-reduce after the
// backward. Same result (the sums are elementwise). Replicated optimizer only.
struct DDPConfig {
  bool overlap_grad_reduce = false;
  int64_t bucket_size = 40'000'000;
};

// Model parallelism: a model built with ModelParallel groups (GPTModel::parallel()) reduces over
// its own groups (train/finalize_grads.h): pass dp = nullptr. Pipeline stages run the microbatches
// through train/pipeline_schedule.h.
StepStats train_step(Context& ctx, GPTModel& model, AdamW& optimizer, std::span<const Batch> microbatches,
                     float lr, float clip_grad, Communicator* dp = nullptr, const DDPConfig& ddp = {});

// The same step with the distributed optimizer (ZeRO-1, train.use_distributed_optimizer):
// gradients are reduce-scattered over dp, each rank updates its shard of the parameters and
// AdamW state, and the shards are all-gathered; equal to the replicated step up to rounding.
StepStats train_step(Context& ctx, GPTModel& model, DistributedAdamW& optimizer, std::span<const Batch> microbatches,
                     float lr, float clip_grad, Communicator& dp);

// The distributed optimizer with a model split over tensor / expert / pipeline ranks (Megatron's
// distributed optimizer with separate dense and expert buffers): `dense` shards the dense
// parameters over the model's dp group, `expert` the expert parameters over expt_dp
// (DistributedAdamW's Kind constructor). The tensor-parallel and shared-embedding sums run first,
// then both reduce-scatters; the clip norm sums both shards' squares over the world, each element
// counted once (train/finalize_grads.h counts_in_sharded_grad_norm).
StepStats train_step(Context& ctx, GPTModel& model, DistributedAdamW& dense, DistributedAdamW& expert,
                     std::span<const Batch> microbatches, float lr, float clip_grad);

// Mean cross-entropy of the model on one batch (forward only, in inference mode: no MoE
// auxiliary losses or router statistics).
double eval_loss(Context& ctx, const GPTModel& model, const Batch& batch);
// The same for several batches at once (one per entry); a pipeline-parallel model runs them as the
// microbatches of one forward-only schedule (the interleaved schedule needs a multiple of the
// pipeline size: the list is padded with repeats whose losses are dropped).
std::vector<double> eval_losses(Context& ctx, const GPTModel& model, std::span<const Batch> batches);

}  // namespace foundry
