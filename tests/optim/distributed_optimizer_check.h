// Shared body of the DistributedAdamW tests (tests/optim: self communicator and threads; tests/dist:
// the MPI world): every rank of dp builds the same table, fills its gradients deterministically
// from (rank, step), and runs DistributedAdamW; the reference, computed locally on every rank, is
// the replicated AdamW + clip_grad_norm on the sum over all ranks of those gradients.
// Gradients are multiples of 1/16 below 2 in magnitude, so every gradient sum and every sum of
// squares is exact in any order: the summed gradients, the norms and hence the clip coefficients
// are identical, and the elementwise update must then match bit for bit (tolerance 0, EXPECT_EQ).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/optim/adamw.h"
#include "foundry/optim/distributed_optimizer.h"

namespace foundry::zero_test {

// A small model: parameters of awkward sizes with and without weight decay, so shard boundaries
// fall inside parameters and inside alignment gaps. `tiny`: one 40-element parameter (N = 48, a
// multiple of no shard size for 2..8 ranks: the padded path; with many ranks some own only padding).
struct Model {
  Param w1, norm, w2, bias;
  ParamTable t;
  explicit Model(bool tiny) {
    if (tiny) {
      t.add(w1, {.name = "w1", .shape = {5, 8}, .init = Init::normal(0.5f)});
    } else {
      t.add(w1, {.name = "w1", .shape = {5, 7}, .init = Init::normal(0.5f)});
      t.add(norm, {.name = "norm", .shape = {9}, .init = Init::ones(), .weight_decay = false});
      t.add(w2, {.name = "w2", .shape = {3, 11}, .init = Init::normal(0.5f)});
      t.add(bias, {.name = "bias", .shape = {4}, .init = Init::normal(0.1f), .weight_decay = false});
    }
    t.allocate(11);
  }
};

inline float grad_of(int rank, int step, int param, int64_t j) {
  const int64_t k = (param * 131 + j * 31 + rank * 17 + step * 7 + rank * j) % 41 - 20;  // [-20, 20]
  return static_cast<float>(k) / 16.f;
}

inline void fill_grads(ParamTable& t, int rank, int step) {
  for (int i = 0; i < t.size(); ++i) {
    float* g = t.param(i).grad.ptr<float>();
    for (int64_t j = 0; j < t.param(i).grad.numel(); ++j) g[j] = grad_of(rank, step, i, j);
  }
}

inline void fill_summed_grads(ParamTable& t, int ranks, int step) {
  for (int i = 0; i < t.size(); ++i) {
    float* g = t.param(i).grad.ptr<float>();
    for (int64_t j = 0; j < t.param(i).grad.numel(); ++j) {
      float s = 0.f;
      for (int r = 0; r < ranks; ++r) s += grad_of(r, step, i, j);
      g[j] = s;
    }
  }
}

inline void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.numel(), b.numel()) << what;
  const float* x = a.ptr<float>();
  const float* y = b.ptr<float>();
  int64_t bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) bad += x[i] != y[i];
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << a.numel() << " elements differ";
}

// Five steps (clipping on in steps 1 and 3, lr varying), then state gather / scatter checks.
inline void check_against_adamw(Communicator& dp, bool tiny) {
  const int R = dp.size(), rank = dp.rank();
  const std::string tag = std::string(tiny ? "tiny" : "model") + " dp=" + std::to_string(R) +
                          " rank=" + std::to_string(rank);
  const AdamW::Config cfg{.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
  auto ref = std::make_unique<Model>(tiny), par = std::make_unique<Model>(tiny);
  AdamW adamw(ref->t, cfg);
  DistributedAdamW zero(par->t, cfg, dp);
  EXPECT_EQ(zero.shard_size() % 16, 0) << tag;
  EXPECT_GE(zero.shard_size() * R, zero.numel()) << tag;
  const double max_norm[5] = {1e3, 1.0, 1e3, 0.5, 0.0};
  for (int step = 0; step < 5; ++step) {
    const float lr = 1e-2f * static_cast<float>(step + 1);
    fill_summed_grads(ref->t, R, step);
    const GradClip c_ref = clip_grad_norm(ref->t, max_norm[step]);
    adamw.step(lr, c_ref.coefficient);
    fill_grads(par->t, rank, step);
    const GradClip c = zero.reduce_gradients(max_norm[step]);
    EXPECT_EQ(c.norm, c_ref.norm) << tag << " step " << step;
    EXPECT_EQ(c.coefficient, c_ref.coefficient) << tag << " step " << step;
    if (step == 1 || step == 3) {
      EXPECT_LT(c.coefficient, 1.f) << tag << " step " << step;
    }
    zero.step(lr, c.coefficient);
    for (int i = 0; i < ref->t.size(); ++i)
      expect_same(par->t.param(i).value, ref->t.param(i).value,
                  tag + " step " + std::to_string(step) + " " + ref->t.spec(i).name);
  }
  EXPECT_EQ(zero.steps(), 5);

  // Gathered state equals the replicated AdamW's, on every rank.
  std::vector<Tensor> m, v;
  zero.gather_state(m, v);
  EXPECT_EQ(static_cast<int>(m.size()), ref->t.size());  // EXPECT, never ASSERT: later collectives must run
  for (int i = 0; i < std::min(ref->t.size(), static_cast<int>(m.size())); ++i) {
    EXPECT_EQ(m[i].shape(), ref->t.spec(i).shape) << tag;
    expect_same(m[i], adamw.exp_avg(i), tag + " exp_avg " + ref->t.spec(i).name);
    expect_same(v[i], adamw.exp_avg_sq(i), tag + " exp_avg_sq " + ref->t.spec(i).name);
  }
  AdamW full(par->t, cfg);
  zero.gather_state(full);
  EXPECT_EQ(full.steps(), 5);
  for (int i = 0; i < ref->t.size(); ++i) expect_same(full.exp_avg_sq(i), adamw.exp_avg_sq(i), tag + " into AdamW");

  // scatter(gather(state)) round-trips the shards; a fresh optimizer scattered from the replicated
  // AdamW (a loaded checkpoint) continues exactly like it.
  const Tensor m_shard = zero.exp_avg_shard().clone(), v_shard = zero.exp_avg_sq_shard().clone();
  const Tensor master = zero.master().clone();
  zero.scatter_state(m, v);
  expect_same(zero.exp_avg_shard(), m_shard, tag + " round-trip exp_avg");
  expect_same(zero.exp_avg_sq_shard(), v_shard, tag + " round-trip exp_avg_sq");
  expect_same(zero.master(), master, tag + " round-trip master");

  DistributedAdamW resumed(par->t, cfg, dp);
  resumed.scatter_state(adamw);
  EXPECT_EQ(resumed.steps(), 5);
  fill_summed_grads(ref->t, R, 5);
  const GradClip c_ref = clip_grad_norm(ref->t, 1.0);
  adamw.step(3e-2f, c_ref.coefficient);
  fill_grads(par->t, rank, 5);
  const GradClip c = resumed.reduce_gradients(1.0);
  EXPECT_EQ(c.coefficient, c_ref.coefficient) << tag;
  resumed.step(3e-2f, c.coefficient);
  for (int i = 0; i < ref->t.size(); ++i)
    expect_same(par->t.param(i).value, ref->t.param(i).value, tag + " resumed " + ref->t.spec(i).name);
}

}  // namespace foundry::zero_test
