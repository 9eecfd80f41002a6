#include "foundry/core/rng.h"

#include <cmath>

namespace foundry {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

std::array<uint32_t, 4> Philox::block(uint64_t i) const {
  const uint64_t ctr = offset_ + i;
  return philox4x32_10({static_cast<uint32_t>(ctr), static_cast<uint32_t>(ctr >> 32), 0u, 0u},
                       {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)});
}

void Philox::uniform_(const TensorView& t, float lo, float hi) {
  float* p = t.ptr<float>();
  const int64_t n = t.numel(), blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < blocks; ++b) {
    const auto r = block(static_cast<uint64_t>(b));
    for (int j = 0; j < 4 && b * 4 + j < n; ++j) p[b * 4 + j] = lo + (hi - lo) * to_unit(r[j]);
  }
  offset_ += static_cast<uint64_t>(blocks);
}

void Philox::normal_(const TensorView& t, float mean, float std) {
  float* p = t.ptr<float>();
  const int64_t n = t.numel(), blocks = (n + 3) / 4;
  constexpr double kTwoPi = 6.283185307179586;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < blocks; ++b) {
    const auto r = block(static_cast<uint64_t>(b));
    for (int pair = 0; pair < 2; ++pair) {
      // Box-Muller on (u1, u2) in (0, 1]: two independent normals.
      const double u1 = (static_cast<double>(r[2 * pair]) + 1.0) / 4294967296.0;
      const double u2 = static_cast<double>(r[2 * pair + 1]) / 4294967296.0;
      const double radius = std::sqrt(-2.0 * std::log(u1));
      const int64_t i0 = b * 4 + 2 * pair;
      if (i0 < n) p[i0] = mean + std * static_cast<float>(radius * std::cos(kTwoPi * u2));
      if (i0 + 1 < n) p[i0 + 1] = mean + std * static_cast<float>(radius * std::sin(kTwoPi * u2));
    }
  }
  offset_ += static_cast<uint64_t>(blocks);
}

}  // namespace foundry
