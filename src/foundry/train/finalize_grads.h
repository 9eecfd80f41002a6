// finalize_model_grads: the gradient reductions after the last backward of a step when the model
// is split over tensor / expert / pipeline ranks (Megatron-Core's
// distributed/finalize_model_grads.py and the clip_grad_norm of optimizer/clip_grads.py):
//   1. parameters marked tp_grad_sum (replicated over tp, each rank's gradient from its share of
//      the work: norms and routers under sequence parallelism, q/k norms with split heads):
//      g = sum over tp of g                                        (one packed all-reduce)
//      tied embeddings over pipeline stages: the word embedding's gradient summed over the
//      first and last stage (Megatron's embedding group; _allreduce_word_embedding_grads)
//   2. dense gradients summed over dp (Megatron's dp_cp group), expert gradients over expt_dp
//      (ParamTable keeps each kind contiguous: one all-reduce each). The loss is normalised by the
//      global batch's token count, so sums (not means) give the gradient of the global mean.
//   3. the global norm of the whole model's gradient, each element counted once:
//      ||g||^2 = sum over the ranks of `all` of the squares of the parameters this rank owns, where
//      a rank owns a dense parameter when its dp rank is 0 and the parameter is split over tp or
//      its tp rank is 0, and an expert parameter when its expt_dp rank is 0 and the parameter is
//      split over etp or its etp rank is 0 (pipeline stages hold disjoint parameters);
//      coefficient = min(1, max_norm / (norm + 1e-6)) as torch's clip_grad_norm_.
// After it every replica of a parameter holds the same summed gradient, so the replicated AdamW
// keeps the replicas identical.
#pragma once

#include "foundry/models/gpt/gpt_model.h"
#include "foundry/optim/adamw.h"

namespace foundry {

// Collective over the model's groups (GPTModel::parallel()); every rank must call it.
// data_parallel_reduced: step 2 already ran (gradient buckets, train_step's overlap_grad_reduce).
GradClip finalize_model_grads(GPTModel& model, double max_norm, bool data_parallel_reduced = false);

// Whether this rank counts parameter i in the global gradient norm (step 3 above).
bool owns_for_grad_norm(const GPTModel& model, int i);
// The same without the data-parallel condition (the distributed optimizer's gradient shards are
// disjoint over the data-parallel ranks already): split over tp / etp or tp / etp rank 0, and
// not the last stage's copy of a shared embedding.
bool counts_in_sharded_grad_norm(const GPTModel& model, int i);
// Step 1 alone (tp_grad_sum parameters over tp, the shared embedding over embd): what the
// distributed optimizer's step needs before its reduce-scatter (the sums commute).
void sum_model_parallel_grads(GPTModel& model);

}  // namespace foundry
