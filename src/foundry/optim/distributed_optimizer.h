// DistributedAdamW: Megatron-Core's distributed optimizer (ZeRO-1, megatron/core/optimizer/
// distrib_optimizer.py) for AdamW over a ParamTable and a communicator `group` of size DP.
//
// Range. The optimizer owns one contiguous range of the table's arena read as f32 elements
// (grad_buffer() and value_buffer() share this layout): either the whole arena, or one Kind's
// range, grad_buffer(Kind) / value_buffer(Kind): ParamTable lays out the dense parameters first,
// then the expert parameters (expert_local). As in Megatron-Core (distrib_optimizer.py with one
// buffer per param group: dense over the data-parallel group dp_cp, experts over the
// expert-data-parallel group expt_dp), a model split over tensor / expert / pipeline ranks uses
// two optimizers: DistributedAdamW(table, Kind::dense, cfg, dp_cp) and (table, Kind::expert, cfg,
// expt_dp). Parameters outside the range are not this optimizer's: it never reads or writes their
// gradients, values or state (see gather_state / scatter_state).
//
// Layout. The range (length N, alignment padding included) is padded to DP * S elements,
// S = ceil(N / DP) rounded up to 16 (64-byte aligned shards; ranges start 64-byte aligned), and
// cut into DP contiguous shards; rank r owns range elements [r S, (r + 1) S). Per step:
//   reduce_scatter_gradients:  g_r = shard r of (sum over the group of the range's gradients)
//   shard_sum_squares(counted): sum of g_r^2 over the parameters with counted(i)   (f64, local)
//   reduce_gradients:  the two, then norm = sqrt(all_reduce(shard_sum_squares(all)))
//                      coefficient = min(1, max_norm / (norm + 1e-6))          (torch clip_grad_norm_)
//   step:              AdamW (ops/optim.h, torch.optim.AdamW) on the shard: master_r, m_r, v_r
//                      the range's values = concat over ranks of master_r      all_gather
// reduce_scatter_gradients and shard_sum_squares exist for model-parallel runs, where the clip norm
// spans more than the group (Megatron's get_grad_norm_fp32 over the model-parallel group): the
// caller sums shard_sum_squares of both optimizers over the world, counting each element once (it
// excludes parameters replicated over tensor-parallel ranks on tp rank > 0), and passes the
// coefficient to step.
// Rank r stores only its shard of the optimizer state: fp32 master values, exp_avg and exp_avg_sq,
// plus the summed gradient shard (4 S floats, S ~ N / DP; the replicated AdamW keeps 2 N).
// Parameters are f32 today, so the master copy equals the parameter shard; it is what makes bf16
// model weights possible (the update runs on the f32 master, the all-gather would then write
// bf16-rounded values into the model).
//
// Empty range (Kind::expert of a model without experts: N = 0): S = 0 and every method is a no-op
// that calls no collective (reduce_gradients returns norm 0, coefficient 1; step only counts the
// step). N is a function of the model layout, identical on every rank of the group, so all ranks
// skip alike.
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
// size (or the replicated AdamW) loads it. With two range optimizers the caller gathers the dense
// and then the expert one into the same AdamW (each writes only its parameters' entries) and
// scatters one AdamW into both (each reads only its parameters' entries).
#pragma once

#include <functional>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/optim/adamw.h"

namespace foundry {

class DistributedAdamW {
 public:
  // Collective over the group only in the methods that say so; the constructors are local. The
  // master shard is copied from the table's current values.
  // The whole arena: every parameter (dense and expert) sharded over dp.
  DistributedAdamW(ParamTable& table, AdamW::Config cfg, Communicator& dp);
  // One kind's range: the parameters with expert_local == (kind == Kind::expert), sharded over
  // group (dp_cp for dense, expt_dp for expert). The range may be empty.
  DistributedAdamW(ParamTable& table, ParamTable::Kind kind, AdamW::Config cfg, Communicator& group);

  // Collective. Reduce-scatters (sum) the range's gradients over the group into this rank's
  // shard (grad_shard()). The table's own gradients are left as they were (this rank's
  // unreduced contribution).
  void reduce_scatter_gradients();
  // Local. Sum in f64 of the squares of the gradient shard over the segments of the parameters i
  // with counted(i) (i: table index; parameters outside the range are never asked). Summed over
  // the group after reduce_scatter_gradients: the squared norm of the summed gradient of the
  // counted parameters.
  double shard_sum_squares(const std::function<bool(int)>& counted) const;
  // Collective. reduce_scatter_gradients, then the norm of the summed gradient over all
  // parameters of the range (shard_sum_squares summed over the group) and PyTorch's clip
  // coefficient (1 when max_norm <= 0).
  GradClip reduce_gradients(double max_norm);

  // Collective. One AdamW step on this rank's shard with the gradient of the last
  // reduce_scatter_gradients, each gradient first multiplied by grad_scale (the clip coefficient);
  // then all-gathers the master shards into the range's values, so every rank of the group holds
  // all updated parameters of the range (values outside the range are untouched). Increments the
  // step count.
  void step(float lr, float grad_scale = 1.f);

  int64_t steps() const { return step_; }
  void set_steps(int64_t steps) { step_ = steps; }
  const AdamW::Config& config() const { return cfg_; }

  // Layout.
  int64_t numel() const { return n_; }              // N: the range as f32 elements
  int64_t range_begin() const { return begin_; }    // arena offset of the range (f32 elements)
  int64_t shard_size() const { return shard_; }      // S
  int64_t shard_begin() const { return rank_ * shard_; }  // inside the range
  int dp_size() const { return dp_size_; }           // the group's size
  bool owns(int param) const { return offset_[static_cast<size_t>(param)] >= 0; }  // in the range
  const Tensor& master() const { return master_; }          // (S) f32
  const Tensor& grad_shard() const { return grad_shard_; }  // (S) f32, the summed gradient
  const Tensor& exp_avg_shard() const { return m_; }        // (S) f32
  const Tensor& exp_avg_sq_shard() const { return v_; }     // (S) f32

  // Collective. Resizes exp_avg / exp_avg_sq to the table's parameter count (existing entries are
  // kept, new ones undefined) and fills exp_avg[i] / exp_avg_sq[i] of every parameter i of the
  // range with its full state (shape of its ParamSpec, f32; tensors of another shape or dtype are
  // reallocated) on every rank. Entries of parameters outside the range are left untouched.
  void gather_state(std::vector<Tensor>& exp_avg, std::vector<Tensor>& exp_avg_sq) const;
  // Collective. The same into a replicated AdamW over the same table: overwrites the state of the
  // range's parameters (the others' untouched) and the step count. Gathering the dense and then
  // the expert optimizer into one AdamW assembles the object checkpoint.cpp saves.
  void gather_state(AdamW& full) const;
  // Local. Keeps this rank's shard of full per-parameter state (vectors of the table's parameter
  // count; entries of the range's parameters must have their ParamSpec's element count, entries of
  // other parameters are not read and may be undefined) and re-reads the master shard from the
  // table's values, which must therefore hold the loaded parameters already (load the
  // checkpoint's parameters first).
  void scatter_state(const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq);
  // Local. The same from a replicated AdamW (a loaded checkpoint), step count included; one AdamW
  // scatters into both range optimizers.
  void scatter_state(const AdamW& full);
  // Local. Copies this rank's shard of the range's values into the master (after the parameters
  // were changed outside the optimizer, e.g. loaded from a checkpoint).
  void load_master_from_params();

 private:
  // A parameter's elements inside this rank's shard: range [begin, end) = shard [begin - s0, ...).
  // Sorted by begin.
  struct Segment {
    int param;
    int64_t begin, end;   // range offsets (f32 elements)
    int64_t param_begin;  // offset of begin inside the parameter
  };

  // kind == nullptr: the whole arena.
  DistributedAdamW(ParamTable& table, AdamW::Config cfg, Communicator& group, const ParamTable::Kind* kind);
  TensorView grad_range() const;
  TensorView value_range() const;

  ParamTable& table_;
  AdamW::Config cfg_;
  Communicator& group_;
  int rank_ = 0, dp_size_ = 1;
  int64_t begin_ = 0, n_ = 0, shard_ = 0;
  std::vector<int64_t> offset_;  // range offset of every parameter (f32 elements); -1: not in the range
  std::vector<Segment> segments_;
  Tensor master_, m_, v_, grad_shard_;
  Tensor padded_;  // (DP S) scratch when N < DP S: padded gradients in, gathered values out
  int64_t step_ = 0;
};

}  // namespace foundry
