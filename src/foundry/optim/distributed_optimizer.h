// DistributedAdamW: Megatron-Core's distributed optimizer (ZeRO-1, megatron/core/optimizer/
// distrib_optimizer.py) for AdamW over a ParamTable and a data-parallel communicator of size DP.
//
// The flat parameter space is the table's arena read as f32 elements (length N, alignment padding
// included; grad_buffer() and value_buffer() share this layout). It is padded to DP * S elements,
// S = ceil(N / DP) rounded up to 16 (64-byte aligned shards), and cut into DP contiguous shards;
// rank r owns elements [r S, (r + 1) S). Per step:
//   reduce_gradients:  g_r = shard r of (sum over ranks of grad_buffer())      reduce_scatter
//                      norm = sqrt(all_reduce(sum over the shard of g_r^2))    (f64)
//                      coefficient = min(1, max_norm / (norm + 1e-6))          (torch clip_grad_norm_)
//   step:              AdamW (ops/optim.h, torch.optim.AdamW) on the shard: master_r, m_r, v_r
//                      value_buffer() = concat over ranks of master_r          all_gather
// Rank r stores only its shard of the optimizer state: fp32 master values, exp_avg and exp_avg_sq,
// plus the summed gradient shard (4 S floats, S ~ N / DP; the replicated AdamW keeps 2 N).
// Parameters are f32 today, so the master copy equals the parameter shard; it is what makes bf16
// model weights possible (the update runs on the f32 master, the all-gather would then write
// bf16-rounded values into the model).
//
// Weight decay: the per-element mask comes from the ParamSpecs (weight_decay = false: norms,
// biases); alignment gaps and the tail padding belong to no parameter and are not stepped at all
// (their gradient is zero, their value stays zero). The mask is stored run-length encoded: the
// list of (parameter, sub-range) segments that intersect the shard.
//
// Equality with the replicated AdamW: the update is the same op (adamw_step) on sub-ranges of
// each parameter with the same scalars, and the op is elementwise, so given the same summed
// gradient and the same clip coefficient the parameters and state are bit-for-bit those of
// AdamW::step. Only the gradient sum (reduce_scatter vs all_reduce: the summation order of the
// MPI implementation) and the norm (f64 sums per shard, then across ranks) may round differently.
//
// Checkpoints stay layout-independent: gather_state assembles the full-size per-parameter
// exp_avg / exp_avg_sq (AdamW's and checkpoint.cpp's layout) on every rank; scatter_state takes
// them and keeps this rank's shard, so a ZeRO-1 run saves what a replicated run saves and any DP
// size (or the replicated AdamW) loads it.
#pragma once

#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/optim/adamw.h"

namespace foundry {

class DistributedAdamW {
 public:
  // Collective over dp only in the methods that say so; the constructor is local. The master
  // shard is copied from the table's current values.
  DistributedAdamW(ParamTable& table, AdamW::Config cfg, Communicator& dp);

  // Collective. Reduce-scatters (sum) the table's gradients into this rank's shard and returns the
  // global norm of the summed gradient and PyTorch's clip coefficient (1 when max_norm <= 0). The
  // table's own gradients are left as they were (this rank's unreduced contribution).
  GradClip reduce_gradients(double max_norm);

  // Collective. One AdamW step on this rank's shard with the gradient of the last
  // reduce_gradients, each gradient first multiplied by grad_scale (the clip coefficient); then
  // all-gathers the master shards into the table's values, so every rank holds all updated
  // parameters. Increments the step count.
  void step(float lr, float grad_scale = 1.f);

  int64_t steps() const { return step_; }
  void set_steps(int64_t steps) { step_ = steps; }
  const AdamW::Config& config() const { return cfg_; }

  // Layout.
  int64_t numel() const { return n_; }              // N: the arena as f32 elements
  int64_t shard_size() const { return shard_; }      // S
  int64_t shard_begin() const { return rank_ * shard_; }
  int dp_size() const { return dp_size_; }
  const Tensor& master() const { return master_; }          // (S) f32
  const Tensor& grad_shard() const { return grad_shard_; }  // (S) f32, the summed gradient
  const Tensor& exp_avg_shard() const { return m_; }        // (S) f32
  const Tensor& exp_avg_sq_shard() const { return v_; }     // (S) f32

  // Collective. Fills exp_avg[i] / exp_avg_sq[i] with the full state of parameter i (shape of its
  // ParamSpec, f32; tensors of another shape or dtype are reallocated) on every rank.
  void gather_state(std::vector<Tensor>& exp_avg, std::vector<Tensor>& exp_avg_sq) const;
  // Collective. The same into a replicated AdamW over the same table (whose state and step count
  // it overwrites): the object checkpoint.cpp saves.
  void gather_state(AdamW& full) const;
  // Local. Keeps this rank's shard of full per-parameter state (shapes as in the ParamSpecs) and
  // re-reads the master shard from the table's values, which must therefore hold the loaded
  // parameters already (load the checkpoint's parameters first).
  void scatter_state(const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq);
  // Local. The same from a replicated AdamW (a loaded checkpoint), step count included.
  void scatter_state(const AdamW& full);
  // Local. Copies this rank's shard of the table's values into the master (after the parameters
  // were changed outside the optimizer, e.g. loaded from a checkpoint).
  void load_master_from_params();

 private:
  // A parameter's elements inside this rank's shard: arena [begin, end) = shard [begin - s0, ...).
  struct Segment {
    int param;
    int64_t begin, end;   // arena offsets (f32 elements)
    int64_t param_begin;  // offset of begin inside the parameter
  };

  ParamTable& table_;
  AdamW::Config cfg_;
  Communicator& dp_;
  int rank_ = 0, dp_size_ = 1;
  int64_t n_ = 0, shard_ = 0;
  std::vector<int64_t> offset_;  // arena offset of every parameter (f32 elements)
  std::vector<Segment> segments_;
  Tensor master_, m_, v_, grad_shard_;
  Tensor padded_;  // (DP S) scratch when N < DP S: padded gradients in, gathered values out
  int64_t step_ = 0;
};

}  // namespace foundry
