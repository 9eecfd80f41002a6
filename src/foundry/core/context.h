// Context: everything a module's forward/backward needs besides its inputs: the device, the
// RNG state (dropout, jitter, recompute replay), and whether we are training. Passed explicitly;
// nothing is global. The Mesh and precision recipe join it with the parallelism and precision
// features.
#pragma once

#include "foundry/core/device.h"
#include "foundry/core/rng.h"

namespace foundry {

struct Context {
  Device device = Device::cpu();
  Philox rng{0};
  bool training = true;
  // Scale of the auxiliary losses' gradients (MoE load balancing, z-loss): Megatron's
  // MoEAuxLossAutoScaler scale, loss_scale / num_microbatches (train_step sets it per step).
  float aux_loss_scale = 1.f;
};

}  // namespace foundry
