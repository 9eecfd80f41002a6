// RoPE: vs the f64 reference on odd/prime shapes with large per-token positions, partial
// rotation (rotary_percent) with pass-through dims, finite differences, backward as the
// inverse rotation, aliasing (out = x, dx = dy), and bad input. Llama 3 frequency scaling: vs
// the reference, the three frequency bands by hand, finite differences, bad factors.
#include "foundry/ops/rope.h"

#include <cmath>
#include <numbers>
#include <limits>
#include <string>
#include <vector>

#include "foundry/backend/cpu/ref/rope_ref.h"
#include "foundry/backend/cpu/rope.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::nan_filled;

using testing::allclose;
using testing::dot;
using testing::finite_difference_check;
using testing::randn;


// Positions of T tokens packed as documents of length doc (restarting at 0), plus offset.
Tensor packed_positions(int64_t T, int32_t doc, int32_t offset = 0) {
  std::vector<int32_t> p(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) p[t] = offset + static_cast<int32_t>(t % doc);
  return Tensor::from<int32_t>({T}, p);
}


struct Config {
  int64_t HD;
  float rotary_percent;
};

TEST(Rope, MatchesReferenceOnOddShapes) {
  // HD 13 with R = 6 leaves an odd number of pass-through dims.
  const Config configs[] = {{2, 1.f}, {8, 1.f}, {8, 0.5f}, {14, 1.f}, {13, 6.f / 13.f},
                            {62, 1.f}, {64, 0.25f}, {128, 1.f}};
  for (int64_t T : {1, 3, 37, 127})
    for (int64_t NH : {1, 3, 7})
      for (const Config& c : configs) {
        SCOPED_TRACE(::testing::Message() << "T " << T << " NH " << NH << " HD " << c.HD
                                          << " rotary_percent " << c.rotary_percent);
        // Positions up to ~1e5: where f32 angles would be visibly wrong.
        const Tensor pos = packed_positions(T, 29, T > 3 ? 100000 : 7);
        const Tensor x = randn({T, NH, c.HD}, 1 + T * NH * c.HD), dy = randn({T, NH, c.HD}, 2 + T);
        Tensor out = nan_filled({T, NH, c.HD}), out_ref = Tensor::empty({T, NH, c.HD});
        Tensor dx = nan_filled({T, NH, c.HD}), dx_ref = Tensor::empty({T, NH, c.HD});
        const RopeArgs args{.positions = pos, .theta = 10000.f, .rotary_percent = c.rotary_percent,
                            .x = x, .out = out, .dy = dy, .dx = dx};
        RopeArgs args_ref = args;
        args_ref.out = out_ref;
        args_ref.dx = dx_ref;
        rope_forward(args);
        ref::rope_forward(args_ref);
        EXPECT_TRUE(allclose(out, out_ref, 1e-6, 1e-6));
        rope_backward(args);
        ref::rope_backward(args_ref);
        EXPECT_TRUE(allclose(dx, dx_ref, 1e-6, 1e-6));
      }
}

TEST(Rope, KnownRotation) {
  // HD 4, R 4: pairs (0, 2) and (1, 3); inv_freq = (1, theta^-1/2) = (1, 0.01) for theta 1e4.
  const Tensor pos = Tensor::from<int32_t>({2}, std::vector<int32_t>{0, 3});
  const Tensor x = Tensor::from({2, 1, 4}, {1.f, 2.f, 3.f, 4.f, 1.f, 2.f, 3.f, 4.f});
  Tensor out = Tensor::empty({2, 1, 4});
  rope_forward({.positions = pos, .x = x, .out = out});
  const auto v = out.to_vector();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(v[i], x.to_vector()[i]);  // position 0: identity
  const double c0 = std::cos(3.0), s0 = std::sin(3.0), c1 = std::cos(0.03), s1 = std::sin(0.03);
  EXPECT_NEAR(v[4], 1 * c0 - 3 * s0, 1e-6);
  EXPECT_NEAR(v[5], 2 * c1 - 4 * s1, 1e-6);
  EXPECT_NEAR(v[6], 3 * c0 + 1 * s0, 1e-6);
  EXPECT_NEAR(v[7], 4 * c1 + 2 * s1, 1e-6);
}

// Angles up to 2^31 rad (HD 2: inv_freq = 1): the f64 range reduction keeps cos/sin accurate.
TEST(Rope, LargePositions) {
  const std::vector<int32_t> p = {0, 1, 1000000, 16777217, 1 << 30, 2147483647};
  const int64_t T = static_cast<int64_t>(p.size());
  const Tensor pos = Tensor::from<int32_t>({T}, p), x = randn({T, 3, 2}, 9);
  Tensor out = Tensor::empty({T, 3, 2}), out_ref = Tensor::empty({T, 3, 2});
  rope_forward({.positions = pos, .x = x, .out = out});
  ref::rope_forward({.positions = pos, .x = x, .out = out_ref});
  EXPECT_TRUE(allclose(out, out_ref, 1e-6, 1e-6));
}

TEST(Rope, PartialRotationPassesTheRestThrough) {
  const Tensor pos = packed_positions(5, 5, 11);
  const Tensor x = randn({5, 3, 16}, 3);
  Tensor out = Tensor::empty({5, 3, 16});
  rope_forward({.positions = pos, .rotary_percent = 0.25f, .x = x, .out = out});  // R = 4
  const float* a = x.ptr<float>();
  const float* b = out.ptr<float>();
  for (int64_t r = 0; r < 15; ++r)
    for (int64_t d = 4; d < 16; ++d) EXPECT_EQ(b[r * 16 + d], a[r * 16 + d]);
}

TEST(Rope, BackwardInvertsForward) {
  const Tensor pos = packed_positions(37, 13, 500);
  const Tensor x = randn({37, 3, 62}, 4);
  Tensor y = Tensor::empty({37, 3, 62}), back = Tensor::empty({37, 3, 62});
  rope_forward({.positions = pos, .x = x, .out = y});
  rope_backward({.positions = pos, .dy = y, .dx = back});
  EXPECT_TRUE(allclose(back, x, 1e-5, 1e-6));
}

TEST(Rope, FiniteDifferences) {
  const Tensor pos = Tensor::from<int32_t>({3}, std::vector<int32_t>{5, 0, 123});
  const Tensor x = randn({3, 2, 6}, 5), w = randn({3, 2, 6}, 6);
  Tensor out = Tensor::empty({3, 2, 6}), dx = Tensor::empty({3, 2, 6});
  for (float pct : {1.f, 2.f / 3.f}) {
    SCOPED_TRACE(pct);
    const RopeArgs args{.positions = pos, .theta = 500.f, .rotary_percent = pct, .x = x,
                        .out = out, .dy = w, .dx = dx};
    auto loss = [&] {
      rope_forward(args);
      return dot(out, w);
    };
    rope_backward(args);
    EXPECT_TRUE(finite_difference_check(loss, x, dx, 1e-2, 2e-2, 2e-3, 36));
  }
}

TEST(Rope, InPlace) {
  const Tensor pos = packed_positions(127, 61, 3);  // large: parallel path
  const Tensor x = randn({127, 7, 64}, 7), dy = randn({127, 7, 64}, 8);
  Tensor out = Tensor::empty({127, 7, 64}), dx = Tensor::empty({127, 7, 64});
  for (float pct : {1.f, 0.5f}) {
    rope_forward({.positions = pos, .rotary_percent = pct, .x = x, .out = out});
    rope_backward({.positions = pos, .rotary_percent = pct, .dy = dy, .dx = dx});
    Tensor xi = x.clone(), di = dy.clone();
    rope_forward({.positions = pos, .rotary_percent = pct, .x = xi, .out = xi});
    rope_backward({.positions = pos, .rotary_percent = pct, .dy = di, .dx = di});
    EXPECT_TRUE(allclose(xi, out, 0, 0));
    EXPECT_TRUE(allclose(di, dx, 0, 0));
  }
}

TEST(Rope, BadInput) {
  const Tensor pos = packed_positions(3, 3), pos4 = packed_positions(4, 4);
  const Tensor pos_f = Tensor::zeros({3});
  const Tensor x = randn({3, 2, 14}, 1), x13 = randn({3, 2, 13}, 1), x2d = randn({3, 28}, 1);
  Tensor out = Tensor::empty({3, 2, 14}), out13 = Tensor::empty({3, 2, 13});
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .rotary_percent = 0.5f, .x = x, .out = out}),
                        "rope_forward", "rotary_percent", "14", "R = 7", "even");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .x = x13, .out = out13}), "rope_forward",
                        "13", "even");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .rotary_percent = 0.f, .x = x, .out = out}),
                        "rope_forward", "rotary_percent");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .rotary_percent = 0.05f, .x = x, .out = out}),
                        "rope_forward", "R = 0");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .rotary_percent = 1.5f, .x = x, .out = out}),
                        "rope_forward", "rotary_percent", "1.5");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos4, .x = x, .out = out}), "rope_forward",
                        "positions", "(4,)", "(3,)");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos_f, .x = x, .out = out}), "rope_forward",
                        "positions", "f32");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .x = x2d, .out = out}), "rope_forward",
                        "(3, 28)");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .x = x, .out = out13}), "rope_forward",
                        "out", "(3, 2, 13)", "(3, 2, 14)");
  EXPECT_ERROR_MENTIONS(rope_backward({.positions = pos, .dy = x, .dx = out13}), "rope_backward",
                        "dx");
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .theta = 0.f, .x = x, .out = out}),
                        "rope_forward", "theta");
}

// Llama 3.1's rope_scaling (config.json of Llama-3.1-8B) and a short original context for small
// head dims (all three bands at HD >= 8 and theta 1e4: wavelengths 6.3 .. 6e4 vs 256 and 64).
constexpr RopeScaling kLlama31{.enabled = true, .factor = 8.f, .low_freq_factor = 1.f, .high_freq_factor = 4.f,
                               .original_max_position_embeddings = 8192};
constexpr RopeScaling kShort{.enabled = true, .factor = 4.f, .low_freq_factor = 1.f, .high_freq_factor = 4.f,
                             .original_max_position_embeddings = 256};

TEST(RopeScaling, MatchesReference) {
  struct Case {
    int64_t HD;
    float rotary_percent, theta;
    RopeScaling scaling;
  };
  const Case cases[] = {{8, 1.f, 10000.f, kShort},       {14, 1.f, 10000.f, kShort},
                        {64, 0.5f, 10000.f, kShort},     {62, 1.f, 10000.f, kShort},
                        {128, 1.f, 500000.f, kLlama31},  {64, 1.f, 500000.f, kLlama31}};
  for (int64_t T : {3, 37, 127})
    for (int64_t NH : {1, 3})
      for (const Case& c : cases) {
        SCOPED_TRACE(::testing::Message() << "T " << T << " NH " << NH << " HD " << c.HD << " theta " << c.theta
                                          << " original context " << c.scaling.original_max_position_embeddings);
        const Tensor pos = packed_positions(T, 29, T > 3 ? 100000 : 7);
        const Tensor x = randn({T, NH, c.HD}, 1 + T * NH * c.HD), dy = randn({T, NH, c.HD}, 2 + T);
        Tensor out = nan_filled({T, NH, c.HD}), out_ref = Tensor::empty({T, NH, c.HD});
        Tensor dx = nan_filled({T, NH, c.HD}), dx_ref = Tensor::empty({T, NH, c.HD});
        const RopeArgs args{.positions = pos, .theta = c.theta, .rotary_percent = c.rotary_percent,
                            .scaling = c.scaling, .x = x, .out = out, .dy = dy, .dx = dx};
        RopeArgs args_ref = args;
        args_ref.out = out_ref;
        args_ref.dx = dx_ref;
        rope_forward(args);
        ref::rope_forward(args_ref);
        EXPECT_TRUE(allclose(out, out_ref, 1e-6, 1e-6));
        rope_backward(args);
        ref::rope_backward(args_ref);
        EXPECT_TRUE(allclose(dx, dx_ref, 1e-6, 1e-6));
        // And the scaling is not a no-op here.
        Tensor plain = Tensor::empty({T, NH, c.HD});
        rope_forward({.positions = pos, .theta = c.theta, .rotary_percent = c.rotary_percent, .x = x, .out = plain});
        EXPECT_FALSE(allclose(plain, out, 1e-3, 1e-3));
      }
}

// R = 6, theta 1000: inv_freq = 1, 0.1, 0.01 (wavelengths 2 pi, 20 pi, 200 pi). Original context
// 100, low / high freq factors 1 / 4: low_wavelen 100, high_wavelen 25, factor 8. So
//   i = 0: 2 pi < 25          -> kept:   1
//   i = 1: 25 <= 20 pi <= 100 -> blend:  s = (100 / (20 pi) - 1) / 3 = 0.19718,
//                                         (1 - s) 0.1 / 8 + s 0.1 = 0.0297535
//   i = 2: 200 pi > 100       -> scaled: 0.01 / 8 = 0.00125
// x = (1, 1, 1, 0, 0, 0) at position p rotates to (cos p f_i, sin p f_i).
TEST(RopeScaling, ThreeBandsHandComputed) {
  const double s = (100.0 / (20.0 * std::numbers::pi) - 1.0) / 3.0;
  const double expected[3] = {1.0, (1 - s) * 0.1 / 8 + s * 0.1, 0.01 / 8};
  EXPECT_NEAR(expected[1], 0.0297535, 1e-7);
  const RopeScaling sc{.enabled = true, .factor = 8.f, .low_freq_factor = 1.f, .high_freq_factor = 4.f,
                       .original_max_position_embeddings = 100};
  const std::vector<double> inv_freq = cpu::rope_inv_freq(1000.f, 6, sc);
  ASSERT_EQ(inv_freq.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(inv_freq[static_cast<size_t>(i)], expected[i], 1e-12) << i;

  const int32_t p = 37;
  const Tensor pos = Tensor::from<int32_t>({1}, std::vector<int32_t>{p});
  const Tensor x = Tensor::from({1, 1, 6}, {1.f, 1.f, 1.f, 0.f, 0.f, 0.f});
  Tensor out = Tensor::empty({1, 1, 6}), out_ref = Tensor::empty({1, 1, 6});
  rope_forward({.positions = pos, .theta = 1000.f, .scaling = sc, .x = x, .out = out});
  ref::rope_forward({.positions = pos, .theta = 1000.f, .scaling = sc, .x = x, .out = out_ref});
  const auto v = out.to_vector(), vr = out_ref.to_vector();
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(v[static_cast<size_t>(i)], std::cos(p * expected[i]), 1e-6) << i;
    EXPECT_NEAR(v[static_cast<size_t>(i) + 3], std::sin(p * expected[i]), 1e-6) << i;
    EXPECT_NEAR(vr[static_cast<size_t>(i)], std::cos(p * expected[i]), 1e-7) << i;
    EXPECT_NEAR(vr[static_cast<size_t>(i) + 3], std::sin(p * expected[i]), 1e-7) << i;
  }
}

// The blend is continuous at the band edges: a wavelength just above high_wavelen is blended with
// s close to 1 (nearly kept). R = 2: inv_freq = 1, wavelength 2 pi; original context 25:
// high_wavelen 6.25 < 2 pi < low_wavelen 25.
TEST(RopeScaling, BandsAreContinuous) {
  const RopeScaling sc{.enabled = true, .factor = 8.f, .low_freq_factor = 1.f, .high_freq_factor = 4.f,
                       .original_max_position_embeddings = 25};
  const double s = (25.0 / (2 * std::numbers::pi) - 1.0) / 3.0;
  EXPECT_NEAR(cpu::rope_inv_freq(10000.f, 2, sc)[0], (1 - s) / 8 + s, 1e-12);
  EXPECT_GT(s, 0.99);
  // Disabled: the factors are ignored.
  EXPECT_EQ(cpu::rope_inv_freq(10000.f, 8, {.factor = 0.f}), cpu::rope_inv_freq(10000.f, 8, {}));
}

TEST(RopeScaling, FiniteDifferencesAndInverse) {
  const Tensor pos = Tensor::from<int32_t>({3}, std::vector<int32_t>{5, 0, 123});
  const Tensor x = randn({3, 2, 16}, 5), w = randn({3, 2, 16}, 6);
  Tensor out = Tensor::empty({3, 2, 16}), dx = Tensor::empty({3, 2, 16}), back = Tensor::empty({3, 2, 16});
  const RopeArgs args{.positions = pos, .theta = 10000.f, .scaling = kShort, .x = x, .out = out, .dy = w, .dx = dx};
  auto loss = [&] {
    rope_forward(args);
    return dot(out, w);
  };
  rope_backward(args);
  EXPECT_TRUE(finite_difference_check(loss, x, dx, 1e-2, 2e-2, 2e-3, 36));
  rope_forward(args);
  rope_backward({.positions = pos, .theta = 10000.f, .scaling = kShort, .dy = out, .dx = back});
  EXPECT_TRUE(allclose(back, x, 1e-5, 1e-6));
}

TEST(RopeScaling, BadFactors) {
  const Tensor pos = packed_positions(3, 3);
  const Tensor x = randn({3, 2, 8}, 1);
  Tensor out = Tensor::empty({3, 2, 8});
  RopeScaling sc = kShort;
  sc.factor = 0.f;
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .scaling = sc, .x = x, .out = out}), "rope_forward",
                        "factor", "0");
  sc = kShort;
  sc.low_freq_factor = 4.f;
  EXPECT_ERROR_MENTIONS(rope_backward({.positions = pos, .scaling = sc, .dy = x, .dx = out}), "rope_backward",
                        "low_freq_factor", "high_freq_factor");
  sc = kShort;
  sc.original_max_position_embeddings = 0;
  EXPECT_ERROR_MENTIONS(rope_forward({.positions = pos, .scaling = sc, .x = x, .out = out}), "rope_forward",
                        "original_max_position_embeddings");
}

}  // namespace
}  // namespace foundry
