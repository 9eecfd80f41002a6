// Param and ParamTable: every model registers each parameter once, with its metadata, in one
// table. Parameter values and gradients live in two arenas (one allocation each) laid out in
// registration order, so zeroing gradients, the global gradient norm, optimizer state, gradient
// buckets, ZeRO shards, checkpoint names and the weight-decay mask all derive from the table,
// never from parallel lists or magic indices.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "foundry/core/arena.h"
#include "foundry/core/tensor.h"

namespace foundry {

struct Init {
  enum class Kind { normal, zeros, ones };
  Kind kind = Kind::normal;
  float std = 0.02f;
  static Init normal(float std) { return {Kind::normal, std}; }
  static Init zeros() { return {Kind::zeros, 0.f}; }
  static Init ones() { return {Kind::ones, 0.f}; }
};

// One block of a sharded parameter: the box [local_offset, local_offset + extent) of this rank's
// tensor holds the box [global_offset, global_offset + extent) of the full tensor.
struct ShardBlock {
  std::vector<int64_t> local_offset;
  std::vector<int64_t> global_offset;
  std::vector<int64_t> extent;
};

struct ParamSpec {
  std::string name;          // checkpoint name, e.g. "decoder.layers.0.mlp.linear_fc1.weight"
  Shape shape;               // this rank's tensor
  DType dtype = DType::f32;
  Init init;
  bool weight_decay = true;  // false for norms and biases
  int tp_split_axis = -1;    // axis split across tensor-parallel ranks; -1: replicated
  bool expert_local = false; // belongs to an expert (reduced over the expert data-parallel group)
  // Sharded parameters (tensor / expert parallelism): the full tensor has global_shape and this
  // rank holds `blocks` of it (one block for a plain row / column / expert split, two for the
  // [gate; up] halves of a tensor-parallel SwiGLU fc1). Empty global_shape: not sharded. The
  // checkpoint name always denotes the full tensor, so checkpoints hold full tensors, values are
  // initialised as the full tensor's slice (equal to one process), and any layout loads any
  // checkpoint (resharding by global offsets).
  Shape global_shape;
  std::vector<ShardBlock> blocks;
  // Replicated over the tensor-parallel group but each rank's gradient covers only its share of
  // the work (norms under sequence parallelism, q/k norms with split heads, the MoE router under
  // sequence parallelism): the gradient is summed over tp (Megatron's finalize_model_grads).
  bool tp_grad_sum = false;
  // Set with the split (shard_spec); which group the shards span: "tp", "ep", "etp", "ep_etp".
  std::string shard_group;

  bool sharded() const { return global_shape.ndim() > 0; }
  const Shape& full_shape() const { return sharded() ? global_shape : shape; }
};

// Shard helpers. `split(spec, axis, rank, size)`: spec becomes rank's 1/size of its current
// (local) shape along axis — the local shape shrinks, global_shape records the full one, and
// existing blocks are narrowed (composes, e.g. an expert split on axis 0 then a ffn split on
// axis 1). `split_halves` does the same for a [gate; up] axis: rank keeps rows
// [r n/2P, (r+1) n/2P) of each half, in two blocks.
void shard_split(ParamSpec& spec, int axis, int rank, int size, const std::string& group);
void shard_split_halves(ParamSpec& spec, int axis, int rank, int size, const std::string& group);
// local (spec.shape) <- its blocks of full (spec.full_shape()), and the reverse (other elements
// of full untouched). f32.
void copy_full_to_shard(const ParamSpec& spec, const TensorView& full, const TensorView& local);
void copy_shard_to_full(const ParamSpec& spec, const TensorView& local, const TensorView& full);

// A parameter's value and gradient: views into the table's arenas once allocated.
struct Param {
  Tensor value;
  Tensor grad;  // same shape; accumulated (+=) by backward
  int index = -1;
  bool defined() const { return value.defined(); }
};

class ParamTable {
 public:
  // Registers p under spec. The Param must stay at a fixed address until allocate() has run.
  void add(Param& p, ParamSpec spec);
  // Allocates the value and gradient arenas, points every registered Param into them,
  // initialises values from (seed, name) and zeroes gradients. A sharded parameter gets its
  // blocks of the full tensor's initial value (the same numbers as one process). Expert
  // parameters (expert_local) are laid out after all dense ones, so each kind is one contiguous
  // range of the arenas (grad_buffer(ParamKind)).
  void allocate(uint64_t seed);

  int size() const { return static_cast<int>(specs_.size()); }
  const ParamSpec& spec(int i) const { return specs_[static_cast<size_t>(i)]; }
  // A registered spec, to mark it sharded / tp_grad_sum; only before allocate().
  ParamSpec& edit_spec(int i);
  Param& param(int i) const { return *params_[static_cast<size_t>(i)]; }
  Param& at(const std::string& name) const;  // throws naming the parameter
  int64_t numel() const;
  bool allocated() const { return values_.capacity() > 0; }

  // Buffers: persistent state that is not trained (no gradient, no optimizer state) but is saved
  // and loaded with the parameters under its name, e.g. the MoE router's expert bias
  // (Megatron's register_buffer). The tensor must outlive the table's use in checkpoints.
  void add_buffer(const std::string& name, Tensor& buffer);
  int num_buffers() const { return static_cast<int>(buffer_names_.size()); }
  const std::string& buffer_name(int i) const { return buffer_names_[static_cast<size_t>(i)]; }
  Tensor& buffer(int i) const { return *buffers_[static_cast<size_t>(i)]; }

  void zero_grad() { grads_.zero_(); }
  // Every gradient, in registration order (for the global norm).
  std::vector<TensorView> grads() const;
  // All gradients as one f32 vector (the arena, alignment padding included and kept at zero): one
  // data-parallel all-reduce covers every parameter.
  TensorView grad_buffer() const;
  // All parameter values as one f32 vector, laid out like grad_buffer() (ZeRO shards are offset
  // ranges of both).
  TensorView value_buffer() const;
  // The dense parameters' / the expert parameters' part of grad_buffer() (reduced over the
  // data-parallel / expert-data-parallel group); either may be empty.
  enum class Kind { dense, expert };
  TensorView grad_buffer(Kind kind) const;
  TensorView value_buffer(Kind kind) const;

 private:
  std::vector<ParamSpec> specs_;
  std::vector<Param*> params_;
  std::vector<std::string> buffer_names_;
  std::vector<Tensor*> buffers_;
  Arena values_;
  Arena grads_;
  int64_t expert_begin_ = 0;  // f32 elements: where the expert parameters start in the arenas
};

}  // namespace foundry
