#include "foundry/backend/cpu/ref/rope_ref.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "foundry/backend/cpu/rope.h"

namespace foundry::ref {

namespace {

// Llama 3 frequency scaling of one inverse frequency, written as Megatron-Core's apply_scaling
// (rotary_pos_embedding.py): three bands by wavelength.
double scaled(const RopeScaling& sc, double freq) {
  if (!sc.enabled) return freq;
  const double old_ctx = static_cast<double>(sc.original_max_position_embeddings);
  const double low_freq_wavelen = old_ctx / sc.low_freq_factor;
  const double high_freq_wavelen = old_ctx / sc.high_freq_factor;
  const double wavelen = 2 * std::numbers::pi / freq;
  if (wavelen < high_freq_wavelen) return freq;
  if (wavelen > low_freq_wavelen) return freq / sc.factor;
  const double smooth = (old_ctx / wavelen - sc.low_freq_factor) / (sc.high_freq_factor - sc.low_freq_factor);
  return (1 - smooth) * freq / sc.factor + smooth * freq;
}

// out = rotate(in) by +angle (forward) or -angle (backward), through a copy so out may alias in.
void rotate(const RopeArgs& a, const TensorView& in_v, const TensorView& out_v, double sign) {
  const int64_t T = in_v.size(0), NH = in_v.size(1), HD = in_v.size(2);
  const int64_t R = cpu::rope_rotary_dims(HD, a.rotary_percent);
  const float* in = in_v.ptr<float>();
  std::vector<double> row(static_cast<size_t>(HD));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < NH; ++h) {
      const float* x = in + (t * NH + h) * HD;
      for (int64_t d = 0; d < HD; ++d) row[d] = x[d];
      for (int64_t i = 0; i < R / 2; ++i) {
        const double inv_freq = scaled(a.scaling, std::pow(static_cast<double>(a.theta), -2.0 * i / R));
        const double angle = sign * a.positions.ptr<int32_t>()[t] * inv_freq;
        row[i] = x[i] * std::cos(angle) - x[i + R / 2] * std::sin(angle);
        row[i + R / 2] = x[i + R / 2] * std::cos(angle) + x[i] * std::sin(angle);
      }
      float* o = out_v.ptr<float>() + (t * NH + h) * HD;
      for (int64_t d = 0; d < HD; ++d) o[d] = static_cast<float>(row[d]);
    }
}

}  // namespace

void rope_forward(const RopeArgs& args) { rotate(args, args.x, args.out, 1.0); }
void rope_backward(const RopeArgs& args) { rotate(args, args.dy, args.dx, -1.0); }

}  // namespace foundry::ref
