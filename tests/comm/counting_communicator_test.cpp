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
  EXPECT_EQ(c.all_reduce_sum(1.5), 1.5);  // an all_gather of 8 bytes
  EXPECT_TRUE(testing::allclose(y, x, 0, 0));
  const auto& t = c.tally();
  EXPECT_EQ(t.at("all_reduce").calls, 2);
  EXPECT_EQ(t.at("all_reduce").bytes, 80);
  EXPECT_EQ(t.at("reduce_scatter").bytes, 40);
  EXPECT_EQ(t.at("all_gather").calls, 2);
  EXPECT_EQ(t.at("all_gather").bytes, 48);
  EXPECT_EQ(t.at("all_reduce").bus_bytes, 0);
  c.reset();
  EXPECT_TRUE(c.tally().empty());
}

}  // namespace
}  // namespace foundry
