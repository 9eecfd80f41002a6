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
