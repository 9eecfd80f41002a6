// Optimizer ops (ops/optim.h): AdamW against the f64 reference and against values from PyTorch's
// torch.optim.AdamW, the global gradient norm against the reference, clipping coefficients,
// scale_, and bad input.
#include "foundry/ops/optim.h"

#include <cmath>
#include <limits>
#include <vector>

#include "foundry/backend/cpu/ref/optim_ref.h"
#include "foundry/core/threads.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::allclose;
using testing::randn;

template <class F>
void expect_error(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const char* p : parts) EXPECT_NE(e.message().find(p), std::string::npos) << e.message();
  }
}

struct AdamWState {
  Tensor p, m, v;
  explicit AdamWState(int64_t n, uint64_t seed)
      : p(randn({n}, seed)), m(Tensor::zeros({n})), v(Tensor::zeros({n})) {}
  AdamWState clone() const {
    AdamWState s = *this;
    s.p = p.clone();
    s.m = m.clone();
    s.v = v.clone();
    return s;
  }
};

TEST(AdamW, MatchesReferenceOverSeveralSteps) {
  const float lr = 1e-2f;
  for (int64_t n : {1, 7, 61, 4099, 70001})
    for (float wd : {0.f, 0.1f})
      for (float grad_scale : {1.f, 0.37f})
        for (int64_t first_step : {1, 1000}) {
          SCOPED_TRACE(::testing::Message() << "n=" << n << " wd=" << wd << " grad_scale=" << grad_scale
                                            << " first_step=" << first_step);
          AdamWState got(n, 100 + n), want = got.clone();
          for (int64_t step = first_step; step < first_step + 5; ++step) {
            const Tensor grad = randn({n}, 1000 * step + n);
            AdamWArgs args{.param = got.p, .grad = grad, .exp_avg = got.m, .exp_avg_sq = got.v, .lr = lr,
                           .weight_decay = wd, .step = step, .grad_scale = grad_scale};
            adamw_step(args);
            args.param = want.p;
            args.exp_avg = want.m;
            args.exp_avg_sq = want.v;
            ref::adamw_step(args);
          }
          // f32 against f64 arithmetic: a few roundings of 6e-8 per step on p, m, v. m can cancel
          // (beta1 m + (1 - beta1) g), so it gets an absolute term on the scale of g; p's update
          // is lr * O(1) with the error of m / sqrt(v) in it.
          EXPECT_TRUE(allclose(got.v, want.v, 2e-6, 0));
          EXPECT_TRUE(allclose(got.m, want.m, 1e-6, 1e-6 * grad_scale));
          EXPECT_TRUE(allclose(got.p, want.p, 1e-6, 4e-6 * lr));
        }
}

// At step 1 with zero state, bias correction makes the update lr * g / (|g| + eps): -lr sign(g).
TEST(AdamW, FirstStepMovesByLrTimesSign) {
  const Tensor p = Tensor::from({4}, {1.f, -2.f, 0.5f, 3.f});
  const Tensor g = Tensor::from({4}, {0.3f, -7.f, -1e-3f, 2.f});
  const Tensor m = Tensor::zeros({4}), v = Tensor::zeros({4});
  adamw_step({.param = p, .grad = g, .exp_avg = m, .exp_avg_sq = v, .lr = 0.125f, .eps = 0.f,
              .weight_decay = 0.5f, .step = 1, .grad_scale = 4.f});
  // p (1 - lr wd) - lr sign(g)
  const std::vector<float> want = {1.f * 0.9375f - 0.125f, -2.f * 0.9375f + 0.125f, 0.5f * 0.9375f + 0.125f,
                                   3.f * 0.9375f - 0.125f};
  EXPECT_TRUE(allclose(p, Tensor::from<float>({4}, want), 1e-6, 0));
}

// Constants from PyTorch 1.13 (Debian python3-torch), /usr/bin/python3:
//   f32 = lambda x: float(np.float32(x))
//   p1 = tensor([0.5, -1.25, 2.0, 0.0, 3e-3]); p2 = tensor([1.5, -0.75, 0.25])
//   opt = torch.optim.AdamW([{"params": [p1], "weight_decay": f32(0.1)},
//                            {"params": [p2], "weight_decay": 0.0}],
//                           lr=f32(1e-2), betas=(f32(0.9), f32(0.999)), eps=f32(1e-8))
//   each step: p.grad = tensor(g[step]); p.grad.mul_(f32(0.5)); opt.step()
//   printed with "%.9g" after steps 1 and 3.
TEST(AdamW, MatchesPyTorchOnATinyVector) {
  const std::vector<std::vector<float>> g1 = {
      {0.1f, -0.2f, 0.3f, 1.0f, -4.0f}, {-0.5f, 0.25f, 0.3f, 0.0f, 2.0f}, {0.05f, -0.2f, -0.7f, 1e-3f, 0.5f}};
  const std::vector<std::vector<float>> g2 = {{1.0f, 2.0f, -3.0f}, {0.5f, -0.5f, 0.0f}, {-1.0f, 0.25f, 4.0f}};
  const Tensor p1 = Tensor::from({5}, {0.5f, -1.25f, 2.0f, 0.0f, 3e-3f}), m1 = Tensor::zeros({5}),
               v1 = Tensor::zeros({5});
  const Tensor p2 = Tensor::from({3}, {1.5f, -0.75f, 0.25f}), m2 = Tensor::zeros({3}), v2 = Tensor::zeros({3});
  const auto step = [&](int64_t s) {
    const Tensor grad1 = Tensor::from<float>({5}, g1[s - 1]), grad2 = Tensor::from<float>({3}, g2[s - 1]);
    adamw_step({.param = p1, .grad = grad1, .exp_avg = m1, .exp_avg_sq = v1, .lr = 1e-2f, .beta1 = 0.9f,
                .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f, .step = s, .grad_scale = 0.5f});
    adamw_step({.param = p2, .grad = grad2, .exp_avg = m2, .exp_avg_sq = v2, .lr = 1e-2f, .beta1 = 0.9f,
                .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.f, .step = s, .grad_scale = 0.5f});
  };
  // Within a few f32 ulps: PyTorch's vectorised kernels may fuse multiply-adds differently.
  const double rtol = 1e-6;
  step(1);
  EXPECT_TRUE(allclose(p1, Tensor::from({5}, {0.489500016f, -1.23874998f, 1.98800004f, -0.00999999978f, 0.0129969995f}), rtol, 0));
  EXPECT_TRUE(allclose(m1, Tensor::from({5}, {0.00500000129f, -0.0100000026f, 0.0150000043f, 0.0500000119f, -0.200000048f}), rtol, 0));
  EXPECT_TRUE(allclose(v1, Tensor::from({5}, {2.49996788e-06f, 9.99987151e-06f, 2.24997111e-05f, 0.000249996781f, 0.0039999485f}), rtol, 0));
  EXPECT_TRUE(allclose(p2, Tensor::from({3}, {1.49000001f, -0.75999999f, 0.25999999f}), rtol, 0));
  step(2);
  step(3);
  EXPECT_TRUE(allclose(p1, Tensor::from({5}, {0.498478502f, -1.23557985f, 1.97549582f, -0.0218598507f, 0.0169673245f}), rtol, 0));
  EXPECT_TRUE(allclose(m1, Tensor::from({5}, {-0.0159500018f, -0.00685000187f, -0.00935000181f, 0.0405500084f, -0.0470000058f}), rtol, 0));
  EXPECT_TRUE(allclose(v1, Tensor::from({5}, {6.55566546e-05f, 3.55889279e-05f, 0.000167430364f, 0.000249497301f, 0.00505343871f}), rtol, 0));
  EXPECT_TRUE(allclose(p2, Tensor::from({3}, {1.47957039f, -0.769067049f, 0.264693975f}), rtol, 0));
  EXPECT_TRUE(allclose(m2, Tensor::from({3}, {0.0129999965f, 0.0710000098f, 0.0785000175f}), rtol, 0));
  EXPECT_TRUE(allclose(v2, Tensor::from({3}, {0.000561930472f, 0.00107604964f, 0.00624542218f}), rtol, 0));
}

TEST(AdamW, BadArgumentsAreErrors) {
  const Tensor p = Tensor::zeros({7}), g = Tensor::zeros({7}), m = Tensor::zeros({7}), v = Tensor::zeros({7});
  const auto run = [](const AdamWArgs& a) { return [a] { adamw_step(a); }; };
  expect_error(run({.param = p, .grad = Tensor::zeros({6}), .exp_avg = m, .exp_avg_sq = v}), {"adamw_step", "grad", "(6,)"});
  expect_error(run({.param = p, .grad = g, .exp_avg = m, .exp_avg_sq = Tensor::zeros({7}, DType::bf16)}),
               {"adamw_step", "exp_avg_sq", "bf16"});
  expect_error(run({.param = p, .grad = g, .exp_avg = m}), {"adamw_step", "required"});
  expect_error(run({.param = p, .grad = g, .exp_avg = m, .exp_avg_sq = v, .step = 0}), {"adamw_step", "step"});
  expect_error(run({.param = p, .grad = g, .exp_avg = m, .exp_avg_sq = v, .beta1 = 1.f}), {"adamw_step", "beta1"});
  expect_error(run({.param = p, .grad = g, .exp_avg = m, .exp_avg_sq = v, .lr = -1.f}), {"adamw_step", "lr"});
  TensorView cp = p, cg = g, cm = m, cv = v;
  cp.device = cg.device = cm.device = cv.device = Device::cuda(0);
  expect_error(run({.param = cp, .grad = cg, .exp_avg = cm, .exp_avg_sq = cv}), {"adamw_step", "not supported"});
}

TEST(GradNorm, MatchesReferenceOverSeveralTensors) {
  std::vector<Tensor> owned;
  uint64_t seed = 7;
  for (int64_t n : {1, 7, 61, 4099, 200003}) {
    owned.push_back(randn({n}, seed, 0.01f * static_cast<float>(seed)));
    ++seed;
  }
  owned.push_back(randn({37, 13}, seed++));
  const std::vector<TensorView> grads(owned.begin(), owned.end());
  const double want = ref::global_grad_norm(grads);
  EXPECT_NEAR(global_grad_norm(grads), want, 1e-12 * want);
  EXPECT_EQ(global_grad_norm({}), 0.0);
  const int threads = num_threads();
  set_num_threads(1);
  const double one = global_grad_norm(grads);
  set_num_threads(2);
  const double two = global_grad_norm(grads);
  set_num_threads(threads);
  EXPECT_EQ(one, two);  // fixed blocks: the same sum on any thread count
}

TEST(GradNorm, Bf16Gradients) {
  const Tensor g = randn({70001}, 3).to(DType::bf16);
  const Tensor as_f32 = g.to(DType::f32);
  const TensorView bf[] = {g}, f[] = {as_f32};
  EXPECT_NEAR(global_grad_norm(bf), ref::global_grad_norm(f), 1e-12 * ref::global_grad_norm(f));
}

TEST(GradNorm, BadArgumentsAreErrors) {
  const Tensor a = Tensor::zeros({3}), b = Tensor::zeros({3}, DType::i32);
  const TensorView grads[] = {a, b};
  expect_error([&] { global_grad_norm(grads); }, {"global_grad_norm", "grads[1]", "i32"});
}

TEST(ClipCoefficient, PyTorchClipGradNorm) {
  EXPECT_EQ(clip_coefficient(0.5, 1.0), 1.f);
  EXPECT_EQ(clip_coefficient(0.0, 1.0), 1.f);
  EXPECT_EQ(clip_coefficient(4.0, 1.0), static_cast<float>(1.0 / (4.0 + 1e-6)));
  EXPECT_LT(clip_coefficient(1.0, 1.0), 1.f);  // the 1e-6 makes norm == max_norm clip slightly
  EXPECT_EQ(clip_coefficient(std::numeric_limits<double>::infinity(), 1.0), 0.f);
  EXPECT_TRUE(std::isnan(clip_coefficient(std::numeric_limits<double>::quiet_NaN(), 1.0)));
  expect_error([] { clip_coefficient(1.0, 0.0); }, {"clip_coefficient", "max_norm"});
  expect_error([] { clip_coefficient(-1.0, 1.0); }, {"clip_coefficient", "norm"});
}

TEST(Scale, F32AndBf16InPlace) {
  const Tensor x = randn({70001}, 9), x0 = x.clone();
  scale_(x, 0.37f);
  const auto got = x.to_vector(), before = x0.to_vector();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], before[i] * 0.37f) << i;
  const Tensor h = randn({13}, 10).to(DType::bf16), h0 = h.clone();
  scale_(h, 0.5f);  // a power of two: exact in bf16
  const auto hv = h.to_vector(), h0v = h0.to_vector();
  for (size_t i = 0; i < hv.size(); ++i) EXPECT_EQ(hv[i], h0v[i] * 0.5f) << i;
  expect_error([] { scale_(Tensor::zeros({3}, DType::i32), 2.f); }, {"scale_", "i32"});
}

}  // namespace
}  // namespace foundry
