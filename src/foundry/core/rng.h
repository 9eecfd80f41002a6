// Philox4x32-10 counter-based RNG (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3",
// SC'11; the same generator as cuRAND and PyTorch's CUDA RNG). Element i of a fill drawn at
// stream offset `offset` uses counter (offset + i / 4) and lane i % 4, so the numbers do not
// depend on how the work is split across threads, and a run resumes exactly from (seed, offset).
#pragma once

#include <array>
#include <cstdint>

#include "foundry/core/tensor.h"

namespace foundry {

// One Philox4x32-10 block: 4 random 32-bit words from a 128-bit counter and a 64-bit key.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

class Philox {
 public:
  explicit Philox(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }  // in blocks of 4 values
  void set_offset(uint64_t o) { offset_ = o; }

  // Fills an f32 tensor; advances the offset by ceil(numel / 4) blocks.
  void uniform_(const TensorView& t, float lo = 0.f, float hi = 1.f);   // [lo, hi)
  void normal_(const TensorView& t, float mean = 0.f, float std = 1.f);  // Box-Muller

  // Uniform float in [0, 1) from a 32-bit word (24 significant bits).
  static float to_unit(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

 private:
  std::array<uint32_t, 4> block(uint64_t i) const;
  uint64_t seed_;
  uint64_t offset_;
};

}  // namespace foundry
