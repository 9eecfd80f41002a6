// CPU RoPE (Su et al. 2021, RoFormer), rotate-half layout as in Megatron-Core
// (megatron/core/models/common/embeddings/rope_utils.py, _apply_rotary_pos_emb_bshd):
//   inv_freq[i] = theta^(-2i/R), angle = p * inv_freq[i], i < R/2
// (optionally rescaled by the Llama 3 bands, ops/rope.h, in rope_inv_freq)
//   out[i] = x[i] cos - x[i+R/2] sin,   out[i+R/2] = x[i+R/2] cos + x[i] sin
// Backward is the same rotation with sin negated. inv_freq is computed once per call (f64) and
// cos/sin once per token, shared by its NH heads: the angle is formed and reduced mod pi/2 in
// f64 (angles reach p ~ 1e5 rad, where an f32 angle would be off by 1e-2), then evaluated by
// vectorised f32 polynomials (sincos_f32 in vector_math.h, about 1e-7 absolute error).
#include "foundry/backend/cpu/rope.h"

#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "foundry/backend/cpu/vector_math.h"

namespace foundry::cpu {

namespace {

constexpr int64_t kParallelMin = int64_t{1} << 14;  // elements; below this threads cost more

// out = rotate(in) by angle p * inv_freq, with sin multiplied by sign (+1 forward, -1 backward).
void rotate(const RopeArgs& a, const TensorView& in_v, const TensorView& out_v, float sign) {
  const int64_t T = in_v.size(0), NH = in_v.size(1), HD = in_v.size(2);
  const int64_t R = rope_rotary_dims(HD, a.rotary_percent), half = R / 2;
  const int32_t* pos = a.positions.ptr<int32_t>();
  const float* in = in_v.ptr<float>();
  float* out = out_v.ptr<float>();
  const bool in_place = in == out;

  const std::vector<double> inv_freq = rope_inv_freq(a.theta, R, a.scaling);

#pragma omp parallel if (T * NH * HD >= kParallelMin)
  {
    std::vector<float> cos_v(static_cast<size_t>(half)), sin_v(static_cast<size_t>(half));
    float* c = cos_v.data();
    float* s = sin_v.data();
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      const double p = pos[t];
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        float sin_i, cos_i;
        sincos_f32(p * inv_freq[i], sin_i, cos_i);
        c[i] = cos_i;
        s[i] = sign * sin_i;
      }
      for (int64_t h = 0; h < NH; ++h) {
        const float* x = in + (t * NH + h) * HD;
        float* o = out + (t * NH + h) * HD;
        // Iteration i reads and writes only {i, i + half}: safe to vectorise even in place.
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = x[i], x1 = x[i + half];
          o[i] = x0 * c[i] - x1 * s[i];
          o[i + half] = x1 * c[i] + x0 * s[i];
        }
        if (!in_place && R < HD)
          std::memcpy(o + R, x + R, static_cast<size_t>(HD - R) * sizeof(float));
      }
    }
  }
}

}  // namespace

std::vector<double> rope_inv_freq(float theta, int64_t R, const RopeScaling& scaling) {
  const int64_t half = R / 2;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = std::pow(static_cast<double>(theta), -2.0 * static_cast<double>(i) / static_cast<double>(R));
  if (!scaling.enabled) return inv_freq;
  // Llama 3 bands (ops/rope.h): long wavelengths slowed by `factor`, short ones kept, a linear
  // blend in 1 / wavelen between them.
  const double old_ctx = static_cast<double>(scaling.original_max_position_embeddings);
  const double factor = scaling.factor, low = scaling.low_freq_factor, high = scaling.high_freq_factor;
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  for (double& f : inv_freq) {
    const double wavelen = 2 * std::numbers::pi / f;
    if (wavelen > low_wavelen) {
      f /= factor;
    } else if (wavelen >= high_wavelen) {
      const double s = (old_ctx / wavelen - low) / (high - low);
      f = (1 - s) * f / factor + s * f;
    }
  }
  return inv_freq;
}

int64_t rope_rotary_dims(int64_t HD, float rotary_percent) {
  return static_cast<int64_t>(std::floor(static_cast<double>(HD) * rotary_percent + 1e-4));
}

void rope_forward(const RopeArgs& args) { rotate(args, args.x, args.out, 1.f); }

// dx written (=): the inverse rotation of dy.
void rope_backward(const RopeArgs& args) { rotate(args, args.dy, args.dx, -1.f); }

}  // namespace foundry::cpu
