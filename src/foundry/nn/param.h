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

struct ParamSpec {
  std::string name;          // checkpoint name, e.g. "decoder.layers.0.mlp.linear_fc1.weight"
  Shape shape;
  DType dtype = DType::f32;
  Init init;
  bool weight_decay = true;  // false for norms and biases
  int tp_split_axis = -1;    // axis split across tensor-parallel ranks; -1: replicated
  bool expert_local = false; // belongs to an expert (reduced over the expert data-parallel group)
};

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
  // initialises values from (seed, name) and zeroes gradients.
  void allocate(uint64_t seed);

  int size() const { return static_cast<int>(specs_.size()); }
  const ParamSpec& spec(int i) const { return specs_[static_cast<size_t>(i)]; }
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

 private:
  std::vector<ParamSpec> specs_;
  std::vector<Param*> params_;
  std::vector<std::string> buffer_names_;
  std::vector<Tensor*> buffers_;
  Arena values_;
  Arena grads_;
};

}  // namespace foundry
