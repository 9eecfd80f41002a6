// ParallelAttention with TP = 1 equals nn::Attention (multi-rank: tests/dist/tensor_parallel_test).
#include "foundry/comm/communicator.h"
#include "tp_checks.h"

namespace foundry {
namespace {

TEST(ParallelAttention, OneRankEqualsAttention) {
  auto self = make_self_communicator("tp");
  for (bool sp : {false, true})
    for (bool qk : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "sp " << sp << " qk_layernorm " << qk);
      testing::check_parallel_attention(*self, sp, qk);
    }
}

TEST(ParallelAttention, OneRankEqualsAttentionWithQkvBiasAndRopeScaling) {
  auto self = make_self_communicator("tp");
  for (bool sp : {false, true}) {
    SCOPED_TRACE(::testing::Message() << "sp " << sp);
    testing::check_parallel_attention(*self, sp, /*qk_layernorm=*/true, /*qkv_bias=*/true, /*rope_scaling=*/true);
  }
}

}  // namespace
}  // namespace foundry
