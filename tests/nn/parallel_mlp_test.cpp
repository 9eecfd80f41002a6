// ParallelMLP with TP = 1 equals nn::MLP; fc1_shard takes matching gate and up rows.
#include "foundry/comm/communicator.h"
#include "tp_checks.h"

namespace foundry {
namespace {

TEST(ParallelMLP, OneRankEqualsMlp) {
  auto self = make_self_communicator("tp");
  testing::check_parallel_mlp(*self, false);
  testing::check_parallel_mlp(*self, true);
}

TEST(ParallelMLP, Fc1ShardHoldsMatchingGateAndUpRows) {
  // [gate; up] with F = 4 rows each, H = 1: gate rows 0..3, up rows 10..13.
  Tensor full = Tensor::from({8, 1}, {0, 1, 2, 3, 10, 11, 12, 13});
  EXPECT_EQ(ParallelMLP::fc1_shard(full, 1, 2).to_vector(), (std::vector<float>{2, 3, 12, 13}));
  EXPECT_EQ(ParallelMLP::fc1_shard(full, 3, 4).to_vector(), (std::vector<float>{3, 13}));
}

}  // namespace
}  // namespace foundry
