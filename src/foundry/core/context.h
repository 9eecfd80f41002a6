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
};

}  // namespace foundry
