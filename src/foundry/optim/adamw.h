// AdamW over a ParamTable (torch.optim.AdamW semantics; the fused update is ops/optim.h).
// State (exp_avg, exp_avg_sq) lives in two arenas laid out like the parameters. Parameters whose
// ParamSpec has weight_decay = false (norms, biases) are stepped without decay.
#pragma once

#include "foundry/core/arena.h"
#include "foundry/nn/param.h"

namespace foundry {

class AdamW {
 public:
  struct Config {
    float lr = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.01f;
  };

  AdamW(ParamTable& table, Config cfg);

  // One step at learning rate lr; every gradient is first multiplied by grad_scale
  // (the clipping coefficient). Increments the step count.
  void step(float lr, float grad_scale = 1.f);

  int64_t steps() const { return step_; }
  // Restores the step count (bias correction) when resuming from a checkpoint.
  void set_steps(int64_t steps) { step_ = steps; }
  const Config& config() const { return cfg_; }
  Tensor& exp_avg(int i) { return m_[static_cast<size_t>(i)]; }
  Tensor& exp_avg_sq(int i) { return v_[static_cast<size_t>(i)]; }
  const Tensor& exp_avg(int i) const { return m_[static_cast<size_t>(i)]; }
  const Tensor& exp_avg_sq(int i) const { return v_[static_cast<size_t>(i)]; }
  int size() const { return static_cast<int>(m_.size()); }  // = the table's parameter count

 private:
  ParamTable& table_;
  Config cfg_;
  Arena m_arena_, v_arena_;
  std::vector<Tensor> m_, v_;
  int64_t step_ = 0;
};

// Global gradient norm over the table and PyTorch's clip coefficient min(1, max / (norm + 1e-6)).
struct GradClip {
  double norm = 0.0;
  float coefficient = 1.f;
};
GradClip clip_grad_norm(const ParamTable& table, double max_norm);

}  // namespace foundry
