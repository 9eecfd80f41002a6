// Tensor-parallel linears with TP = 1 (a self communicator) equal nn::Linear; the shard helpers.
// The multi-rank checks are tests/dist/tensor_parallel_test.cpp (same code: tests/tp_checks.h).
#include "foundry/comm/communicator.h"
#include "tp_checks.h"

namespace foundry {
namespace {

TEST(ParallelLinear, ColumnAndRowWithOneRankEqualLinear) {
  auto self = make_self_communicator("tp");
  for (bool sp : {false, true})
    for (DType c : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(::testing::Message() << "sp " << sp << " compute " << dtype_name(c));
      testing::check_column_parallel_linear(*self, sp, c);
      testing::check_row_parallel_linear(*self, sp, c);
    }
}

TEST(ParallelLinear, ShardsAreRowAndColumnBlocks) {
  Tensor full = Tensor::from({4, 6}, {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25,
                                      30, 31, 32, 33, 34, 35});
  EXPECT_EQ(shard_rows(full, 1, 2).to_vector(), (std::vector<float>{20, 21, 22, 23, 24, 25, 30, 31, 32,
                                                                    33, 34, 35}));
  EXPECT_EQ(shard_cols(full, 2, 3).to_vector(), (std::vector<float>{4, 5, 14, 15, 24, 25, 34, 35}));
  EXPECT_NE(testing::error_of([&] { shard_cols(full, 0, 4); }).find("not divisible into 4 shards"),
            std::string::npos);
}

}  // namespace
}  // namespace foundry
