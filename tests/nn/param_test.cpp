#include "foundry/nn/param.h"

#include "testing.h"

namespace foundry {
namespace {

TEST(ParamTable, ArenasFollowRegistrationOrder) {
  Param a, b, c;
  ParamTable t;
  t.add(a, {.name = "a.weight", .shape = {3, 5}, .init = Init::normal(0.5f)});
  t.add(b, {.name = "b.weight", .shape = {7}, .init = Init::ones(), .weight_decay = false});
  t.add(c, {.name = "c.weight", .shape = {2, 2}, .init = Init::zeros()});
  t.allocate(9);
  EXPECT_EQ(t.size(), 3);
  EXPECT_EQ(t.numel(), 15 + 7 + 4);
  EXPECT_EQ(a.index, 0);
  EXPECT_EQ(&t.at("b.weight"), &b);
  EXPECT_FALSE(t.spec(1).weight_decay);
  EXPECT_LT(a.value.data(), b.value.data());
  EXPECT_LT(b.value.data(), c.value.data());
  EXPECT_EQ(b.value.to_vector(), std::vector<float>(7, 1.f));
  EXPECT_EQ(c.value.to_vector(), std::vector<float>(4, 0.f));
  EXPECT_EQ(a.grad.to_vector(), std::vector<float>(15, 0.f));
  EXPECT_THROW(t.at("d.weight"), Error);
}

TEST(ParamTable, InitDependsOnSeedAndNameNotOrder) {
  Param a1, b1, a2, b2;
  ParamTable t1, t2;
  t1.add(a1, {.name = "a", .shape = {64}});
  t1.add(b1, {.name = "b", .shape = {64}});
  t2.add(b2, {.name = "b", .shape = {64}});
  t2.add(a2, {.name = "a", .shape = {64}});
  t1.allocate(3);
  t2.allocate(3);
  EXPECT_EQ(a1.value.to_vector(), a2.value.to_vector());
  EXPECT_NE(a1.value.to_vector(), b1.value.to_vector());
}

TEST(ParamTable, ZeroGradClearsEveryGradient) {
  Param a, b;
  ParamTable t;
  t.add(a, {.name = "a", .shape = {5}});
  t.add(b, {.name = "b", .shape = {3, 3}});
  t.allocate(1);
  a.grad.ptr<float>()[4] = 1.f;
  b.grad.ptr<float>()[8] = 2.f;
  t.zero_grad();
  EXPECT_EQ(a.grad.to_vector(), std::vector<float>(5, 0.f));
  EXPECT_EQ(b.grad.to_vector(), std::vector<float>(9, 0.f));
  EXPECT_EQ(t.grads().size(), 2u);
}

TEST(ParamTable, RejectsDuplicatesAndLateRegistration) {
  Param a, b, c;
  ParamTable t;
  t.add(a, {.name = "a", .shape = {5}});
  EXPECT_THROW(t.add(b, {.name = "a", .shape = {5}}), Error);
  t.allocate(1);
  EXPECT_THROW(t.add(c, {.name = "c", .shape = {5}}), Error);
}

}  // namespace
}  // namespace foundry

namespace foundry {
namespace {

// Shards: the blocks of a split (and of a [gate; up] split, and of a split composed with another)
// are exactly the slices a naive loop takes; a sharded parameter starts as its slice of the full
// tensor's initial value; dense and expert parameters occupy separate ranges of the arenas.
TEST(ParamShards, SplitHalvesAndComposedSplitsMatchNaiveSlices) {
  const Shape full_shape{4, 8, 3};  // (E, 2F, H)
  std::vector<float> v(static_cast<size_t>(full_shape.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const Tensor full = Tensor::from<float>(full_shape, v);
  for (int ep = 0; ep < 2; ++ep)
    for (int etp = 0; etp < 2; ++etp) {
      ParamSpec s{.name = "experts.linear_fc1.weight", .shape = full_shape};
      shard_split(s, 0, ep, 2, "ep");
      shard_split_halves(s, 1, etp, 2, "etp");
      ASSERT_EQ(s.shape, (Shape{2, 4, 3}));
      EXPECT_EQ(s.global_shape, full_shape);
      EXPECT_EQ(s.shard_group, "ep_etp");
      Tensor local = Tensor::empty(s.shape);
      copy_full_to_shard(s, full, local);
      for (int64_t e = 0; e < 2; ++e)
        for (int64_t r = 0; r < 4; ++r)
          for (int64_t h = 0; h < 3; ++h) {
            // local row r: gate rows [etp 2, +2) then up rows 4 + [etp 2, +2)
            const int64_t g_row = r < 2 ? etp * 2 + r : 4 + etp * 2 + (r - 2);
            const int64_t g = ((ep * 2 + e) * 8 + g_row) * 3 + h;
            EXPECT_EQ(local.ptr<float>()[(e * 4 + r) * 3 + h], v[static_cast<size_t>(g)]);
          }
      Tensor back = Tensor::zeros(full_shape);
      copy_shard_to_full(s, local, back);
      for (int64_t i = 0; i < full_shape.numel(); ++i) {
        if (back.ptr<float>()[i] != 0.f) EXPECT_EQ(back.ptr<float>()[i], v[static_cast<size_t>(i)]);
      }
    }
  ParamSpec cols{.name = "proj.weight", .shape = {2, 6}};
  shard_split(cols, 1, 2, 3, "tp");
  Tensor c = Tensor::empty(cols.shape);
  copy_full_to_shard(cols, Tensor::from({2, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}), c);
  EXPECT_EQ(c.to_vector(), (std::vector<float>{4, 5, 10, 11}));
  ParamSpec bad{.name = "x.weight", .shape = {3, 2}};
  EXPECT_THROW(shard_split(bad, 0, 0, 2, "tp"), Error);
}

TEST(ParamShards, ShardedInitIsTheSliceOfTheFullInitAndExpertsComeLast) {
  Param full, part, expert, dense;
  ParamTable one, two;
  one.add(full, {.name = "w", .shape = {6, 4}, .init = Init::normal(1.f)});
  one.allocate(5);
  ParamSpec s{.name = "w", .shape = {6, 4}, .init = Init::normal(1.f)};
  shard_split(s, 0, 1, 3, "tp");
  two.add(expert, {.name = "e", .shape = {2, 2}, .expert_local = true});
  two.add(part, s);
  two.add(dense, {.name = "d", .shape = {3}});
  two.allocate(5);
  EXPECT_EQ(part.value.to_vector(), full.value.slice(2, 4).to_vector());
  EXPECT_LT(part.value.data(), dense.value.data());
  EXPECT_LT(dense.value.data(), expert.value.data());
  EXPECT_EQ(two.grad_buffer(ParamTable::Kind::expert).data, expert.grad.data());
  EXPECT_EQ(two.grad_buffer(ParamTable::Kind::dense).shape[0] + two.grad_buffer(ParamTable::Kind::expert).shape[0],
            two.grad_buffer().shape[0]);
}

}  // namespace
}  // namespace foundry
