// Seeded permutations for the data pipeline: Fisher-Yates (Durstenfeld's in-place version,
// from the last element down, as numpy's RandomState.shuffle does it) driven by foundry's
// Philox4x32-10 (core/rng.h) instead of numpy's Mersenne Twister. Draw k of stream `stream`
// is the 64-bit word (lanes 2(k%2), 2(k%2)+1) of Philox block counter (k/2, stream) under key
// seed, so a permutation depends only on (seed, stream, size): not on threads or platform.
// Index j in [0, i] comes from Lemire's multiply-shift: (r * (i + 1)) >> 64.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <utility>

#include "foundry/core/rng.h"

namespace foundry {

// Streams used by the GPT dataset; documented so a permutation can be reproduced elsewhere.
enum class ShuffleStream : uint64_t {
  document_index = 1,         // documents x epochs (all epochs, or all but the final one)
  document_index_final = 2,   // the separated final epoch
  sample_index = 3,           // samples of the shuffled range [0, num_samples_sans_final)
  sample_index_final = 4,     // samples of the final epoch when separated
};

class PhiloxDraws {
 public:
  PhiloxDraws(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  uint64_t operator()() {
    if ((k_ & 1) == 0) {
      block_ = philox4x32_10({static_cast<uint32_t>(k_ >> 1), static_cast<uint32_t>(k_ >> 33),
                              static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32)},
                             {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)});
    }
    const int lane = static_cast<int>(k_ & 1) * 2;
    ++k_;
    return static_cast<uint64_t>(block_[lane]) | (static_cast<uint64_t>(block_[lane + 1]) << 32);
  }
  // Uniform in [0, n) for n >= 1.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>((*this)()) * n) >> 64);
  }

 private:
  uint64_t seed_, stream_, k_ = 0;
  std::array<uint32_t, 4> block_{};
};

template <class T> void philox_shuffle(std::span<T> v, uint64_t seed, ShuffleStream stream) {
  PhiloxDraws draws(seed, static_cast<uint64_t>(stream));
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(draws.below(i));  // in [0, i - 1]
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace foundry
