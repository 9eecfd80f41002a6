#include "foundry/comm/counting_communicator.h"

#include "testing.h"

namespace foundry {
namespace {

// Over a group of one: the collectives still run (copies) and are tallied with their payload;
// ring bus bytes are zero because nothing leaves the rank.
TEST(CountingCommunicator, TalliesCallsAndPayloadBytes) {
  const std::unique_ptr<Communicator> self = make_self_communicator();
  CountingCommunicator c(*self);
  Tensor x = Tensor::full({10}, 2.f), y = Tensor::empty({10});
  c.all_reduce(x.view(), ReduceOp::sum);
  c.all_reduce(x.view(), ReduceOp::max);
  c.reduce_scatter(x.view(), y.view());
  c.all_gather(x.view(), y.view());
  const std::vector<int64_t> counts{10};
  c.reduce_scatter_v(x.view(), y.view(), counts);
  EXPECT_EQ(c.all_reduce_sum(1.5), 1.5);  // an all_gather of 8 bytes
  EXPECT_TRUE(testing::allclose(y, x, 0, 0));
  const auto& t = c.tally();
  EXPECT_EQ(t.at("all_reduce").calls, 2);
  EXPECT_EQ(t.at("all_reduce").bytes, 80);
  EXPECT_EQ(t.at("reduce_scatter").bytes, 40);
  EXPECT_EQ(t.at("reduce_scatter_v").calls, 1);
  EXPECT_EQ(t.at("reduce_scatter_v").bytes, 40);
  EXPECT_EQ(t.at("reduce_scatter_v").bus_bytes, 0);
  EXPECT_EQ(t.at("all_gather").calls, 2);
  EXPECT_EQ(t.at("all_gather").bytes, 48);
  EXPECT_EQ(t.at("all_reduce").bus_bytes, 0);
  c.reset();
  EXPECT_TRUE(c.tally().empty());
}

// Sub-groups (a Mesh's "tp", "dp_cp", ...) tally into the same store under their own names, and
// splits of splits too; reset clears them all.
TEST(CountingCommunicator, CountsSubGroupsUnderTheirNames) {
  const std::unique_ptr<Communicator> self = make_self_communicator("world");
  CountingCommunicator world(*self);
  std::unique_ptr<Communicator> tp = world.split(0, 0, "tp");
  std::unique_ptr<Communicator> inner = tp->split(0, 0, "ep");
  Tensor x = Tensor::full({4}, 1.f), y = Tensor::empty({4});
  world.all_reduce(x.view(), ReduceOp::sum);
  tp->all_reduce(x.view(), ReduceOp::sum);
  tp->all_reduce(x.view(), ReduceOp::max);
  inner->all_gather(x.view(), y.view());
  EXPECT_EQ(tp->name(), "tp");
  const auto& g = world.groups();
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g.at("world").at("all_reduce").calls, 1);
  EXPECT_EQ(g.at("tp").at("all_reduce").calls, 2);
  EXPECT_EQ(g.at("tp").at("all_reduce").bytes, 32);
  EXPECT_EQ(g.at("ep").at("all_gather").bytes, 16);
  EXPECT_EQ(world.tally().size(), 1u);  // the world's own collectives only
  world.reset();
  for (const auto& [name, tally] : world.groups()) EXPECT_TRUE(tally.empty()) << name;
}

}  // namespace
}  // namespace foundry
