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
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/ops/optim.h"
#include "foundry/optim/adamw.h"
#include "foundry/optim/distributed_optimizer.h"

namespace foundry::zero_test {

// A small model: parameters of awkward sizes with and without weight decay, so shard boundaries
// fall inside parameters and inside alignment gaps. `tiny`: one 40-element parameter (N = 48, a
// multiple of no shard size for 2..8 ranks: the padded path; with many ranks some own only padding).
// `experts` (not tiny): two expert parameters registered between the dense ones (expert range:
// 24 + 10 elements, N = 48; dense range N = 128), so the arena order differs from the index order.
struct Model {
  Param w1, norm, e1, w2, ebias, bias;
  ParamTable t;
  explicit Model(bool tiny, bool experts = false) {
    if (tiny) {
      t.add(w1, {.name = "w1", .shape = {5, 8}, .init = Init::normal(0.5f)});
    } else {
      t.add(w1, {.name = "w1", .shape = {5, 7}, .init = Init::normal(0.5f)});
      t.add(norm, {.name = "norm", .shape = {9}, .init = Init::ones(), .weight_decay = false});
      if (experts)
        t.add(e1, {.name = "e1", .shape = {4, 6}, .init = Init::normal(0.5f), .expert_local = true});
      t.add(w2, {.name = "w2", .shape = {3, 11}, .init = Init::normal(0.5f)});
      if (experts)
        t.add(ebias, {.name = "ebias", .shape = {10}, .init = Init::normal(0.1f), .weight_decay = false,
                      .expert_local = true});
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
// `experts`: the whole-arena optimizer over a table holding expert parameters too.
inline void check_against_adamw(Communicator& dp, bool tiny, bool experts = false) {
  const int R = dp.size(), rank = dp.rank();
  const std::string tag = std::string(tiny ? "tiny" : experts ? "experts" : "model") + " dp=" + std::to_string(R) +
                          " rank=" + std::to_string(rank);
  const AdamW::Config cfg{.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
  auto ref = std::make_unique<Model>(tiny, experts), par = std::make_unique<Model>(tiny, experts);
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
  EXPECT_EQ(resumed.numel(), par->t.grad_buffer().numel()) << tag;
  EXPECT_EQ(resumed.range_begin(), 0) << tag;
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

// Two range optimizers, as a model split over expert ranks uses them: dense parameters over dp
// (every rank of the world here), expert parameters over edp, consecutive blocks of E = edp.size()
// ranks of dp (edp rank = dp rank - block start). Each block holds different experts, so the
// reference on rank r is AdamW on: dense gradients summed over all of dp, expert gradients summed
// over r's block; the clip norm covers the dense parameters once and every block's experts
// (sum over dp of both shard_sum_squares). Checks five steps bit for bit, shard_sum_squares with a
// predicate excluding some parameters, the reduce_gradients norms of each range, gather_state of
// both into one AdamW / into vectors (each leaving the other kind's entries untouched),
// scatter_state round trips and a resume. experts = false: the expert range is empty (a no-op
// optimizer) and the dense one covers the table.
inline void check_kinds(Communicator& dp, Communicator& edp, bool experts) {
  const int R = dp.size(), rank = dp.rank(), E = edp.size(), e0 = rank - edp.rank();
  const std::string tag = std::string(experts ? "experts" : "no experts") + " dp=" + std::to_string(R) +
                          " edp=" + std::to_string(E) + " rank=" + std::to_string(rank);
  ASSERT_EQ(R % E, 0) << tag;
  const AdamW::Config cfg{.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
  auto ref = std::make_unique<Model>(false, experts), par = std::make_unique<Model>(false, experts);
  ParamTable& t = par->t;
  const int P = t.size();
  auto is_expert = [&](int i) { return t.spec(i).expert_local; };
  auto counted = [](int i) { return i % 2 == 0; };  // excludes odd table indices of both kinds
  AdamW adamw(ref->t, cfg);
  DistributedAdamW dense(t, ParamTable::Kind::dense, cfg, dp), expert(t, ParamTable::Kind::expert, cfg, edp);
  EXPECT_EQ(dense.numel(), 128) << tag;
  EXPECT_EQ(dense.range_begin(), 0) << tag;
  EXPECT_EQ(expert.numel(), experts ? 48 : 0) << tag;
  EXPECT_EQ(expert.range_begin(), 128) << tag;
  for (int i = 0; i < P; ++i) {
    EXPECT_EQ(dense.owns(i), !is_expert(i)) << tag;
    EXPECT_EQ(expert.owns(i), is_expert(i)) << tag;
  }

  // Reference gradients of this rank: dense summed over dp, expert over the block starting at b0.
  auto fill_reference = [&](int step, int b0) {
    for (int i = 0; i < P; ++i) {
      float* g = ref->t.param(i).grad.ptr<float>();
      for (int64_t j = 0; j < ref->t.param(i).grad.numel(); ++j) {
        float s = 0.f;
        for (int r = is_expert(i) ? b0 : 0; r < (is_expert(i) ? b0 + E : R); ++r) s += grad_of(r, step, i, j);
        g[j] = s;
      }
    }
  };
  auto sum_sq = [&](bool want_expert, const std::function<bool(int)>& pred) {
    double s = 0;
    for (int i = 0; i < P; ++i) {
      if (is_expert(i) != want_expert || !pred(i)) continue;
      const float* g = ref->t.param(i).grad.ptr<float>();
      for (int64_t j = 0; j < ref->t.param(i).grad.numel(); ++j) s += double(g[j]) * double(g[j]);
    }
    return s;
  };
  auto all = [](int) { return true; };

  const double max_norm[5] = {1e3, 1.0, 1e3, 0.5, 0.0};
  for (int step = 0; step < 5; ++step) {
    const std::string st = tag + " step " + std::to_string(step);
    const float lr = 1e-2f * static_cast<float>(step + 1);
    // The world's squared norm: every block's experts (exact: the gradients are on a 1/16 grid).
    double expert_sq_all_blocks = 0, expert_sq_counted = 0;
    for (int b0 = 0; b0 < R; b0 += E) {
      fill_reference(step, b0);
      expert_sq_all_blocks += sum_sq(true, all);
    }
    fill_reference(step, e0);
    const double dense_sq = sum_sq(false, all);
    expert_sq_counted = sum_sq(true, counted);
    const double norm_ref = std::sqrt(dense_sq + expert_sq_all_blocks);
    const float coef_ref = max_norm[step] > 0 ? clip_coefficient(norm_ref, max_norm[step]) : 1.f;
    adamw.step(lr, coef_ref);

    fill_grads(t, rank, step);
    const TensorView gb = t.grad_buffer();
    const std::vector<float> grads_before(gb.ptr<float>(), gb.ptr<float>() + gb.numel());
    dense.reduce_scatter_gradients();
    expert.reduce_scatter_gradients();
    EXPECT_TRUE(std::equal(grads_before.begin(), grads_before.end(), gb.ptr<float>()))
        << st << ": the table's gradients changed";
    const double norm = std::sqrt(dp.all_reduce_sum(dense.shard_sum_squares(all) + expert.shard_sum_squares(all)));
    EXPECT_EQ(norm, norm_ref) << st;
    EXPECT_EQ(dp.all_reduce_sum(dense.shard_sum_squares(counted)), sum_sq(false, counted)) << st;
    EXPECT_EQ(edp.all_reduce_sum(expert.shard_sum_squares(counted)), expert_sq_counted) << st;
    EXPECT_EQ(edp.all_reduce_sum(expert.shard_sum_squares(all)), sum_sq(true, all)) << st;
    const float coef = max_norm[step] > 0 ? clip_coefficient(norm, max_norm[step]) : 1.f;
    EXPECT_EQ(coef, coef_ref) << st;
    if (step == 1 || step == 3) {
      EXPECT_LT(coef, 1.f) << st;
    }
    dense.step(lr, coef);
    expert.step(lr, coef);
    for (int i = 0; i < P; ++i) expect_same(t.param(i).value, ref->t.param(i).value, st + " " + t.spec(i).name);
  }
  EXPECT_EQ(dense.steps(), 5);
  EXPECT_EQ(expert.steps(), 5);

  // gather_state of the dense and then the expert optimizer into one AdamW: each writes only its
  // parameters' entries.
  AdamW full(t, cfg);
  for (int i = 0; i < P; ++i) {
    full.exp_avg(i).copy_from(Tensor::full(t.spec(i).shape, 7.f));
    full.exp_avg_sq(i).copy_from(Tensor::full(t.spec(i).shape, 7.f));
  }
  dense.gather_state(full);
  for (int i = 0; i < P; ++i)
    if (is_expert(i)) {
      expect_same(full.exp_avg(i), Tensor::full(t.spec(i).shape, 7.f), tag + " untouched by dense " + t.spec(i).name);
    } else {
      expect_same(full.exp_avg(i), adamw.exp_avg(i), tag + " dense exp_avg " + t.spec(i).name);
    }
  expert.gather_state(full);
  EXPECT_EQ(full.steps(), 5);
  for (int i = 0; i < P; ++i) {
    expect_same(full.exp_avg(i), adamw.exp_avg(i), tag + " gathered exp_avg " + t.spec(i).name);
    expect_same(full.exp_avg_sq(i), adamw.exp_avg_sq(i), tag + " gathered exp_avg_sq " + t.spec(i).name);
  }
  // Into vectors: the expert optimizer leaves the dense entries undefined, then the dense one fills them.
  std::vector<Tensor> m, v;
  expert.gather_state(m, v);
  EXPECT_EQ(static_cast<int>(m.size()), P);
  for (int i = 0; i < std::min(P, static_cast<int>(m.size())); ++i)
    EXPECT_EQ(m[i].defined(), is_expert(i)) << tag << " " << t.spec(i).name;
  dense.gather_state(m, v);
  for (int i = 0; i < std::min(P, static_cast<int>(m.size())); ++i) {
    expect_same(m[i], adamw.exp_avg(i), tag + " vector exp_avg " + t.spec(i).name);
    expect_same(v[i], adamw.exp_avg_sq(i), tag + " vector exp_avg_sq " + t.spec(i).name);
  }

  // scatter_state reads only its parameters' entries (the others undefined here) and round-trips.
  for (DistributedAdamW* o : {&dense, &expert}) {
    std::vector<Tensor> mo(static_cast<size_t>(P)), vo(static_cast<size_t>(P));
    for (int i = 0; i < P; ++i)
      if (o->owns(i)) {
        mo[static_cast<size_t>(i)] = m[static_cast<size_t>(i)];
        vo[static_cast<size_t>(i)] = v[static_cast<size_t>(i)];
      }
    const Tensor m_shard = o->exp_avg_shard().clone(), v_shard = o->exp_avg_sq_shard().clone();
    const Tensor master = o->master().clone();
    o->scatter_state(mo, vo);
    expect_same(o->exp_avg_shard(), m_shard, tag + " round-trip exp_avg");
    expect_same(o->exp_avg_sq_shard(), v_shard, tag + " round-trip exp_avg_sq");
    expect_same(o->master(), master, tag + " round-trip master");
  }

  // Both fresh optimizers scattered from one replicated AdamW continue exactly like it; here each
  // range is clipped by its own reduce_gradients norm.
  DistributedAdamW dense2(t, ParamTable::Kind::dense, cfg, dp), expert2(t, ParamTable::Kind::expert, cfg, edp);
  dense2.scatter_state(adamw);
  expert2.scatter_state(adamw);
  EXPECT_EQ(dense2.steps(), 5);
  EXPECT_EQ(expert2.steps(), 5);
  fill_reference(5, e0);
  const double dn = std::sqrt(sum_sq(false, all)), en = std::sqrt(sum_sq(true, all));
  fill_grads(t, rank, 5);
  const GradClip cd = dense2.reduce_gradients(1.0), ce = expert2.reduce_gradients(1.0);
  EXPECT_EQ(cd.norm, dn) << tag;
  EXPECT_EQ(cd.coefficient, clip_coefficient(dn, 1.0)) << tag;
  EXPECT_LT(cd.coefficient, 1.f) << tag;
  EXPECT_EQ(ce.norm, en) << tag;
  EXPECT_EQ(ce.coefficient, experts ? clip_coefficient(en, 1.0) : 1.f) << tag;
  adamw.step(3e-2f, cd.coefficient);  // one coefficient for both ranges
  dense2.step(3e-2f, cd.coefficient);
  expert2.step(3e-2f, cd.coefficient);
  for (int i = 0; i < P; ++i) expect_same(t.param(i).value, ref->t.param(i).value, tag + " resumed " + t.spec(i).name);
  EXPECT_EQ(dense2.steps(), 6);
  EXPECT_EQ(expert2.steps(), 6);
}

}  // namespace foundry::zero_test
