// Tensor (and sequence) parallelism over the MPI world (TP = world size: 2, 4, 8 ranks): each
// module equals the single-process module with the full weights (tests/tp_checks.h).
#include "foundry/comm/communicator.h"
#include "tp_checks.h"

namespace foundry {
namespace {

TEST(TensorParallel, ColumnParallelLinear) {
  for (bool sp : {false, true})
    for (DType c : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(::testing::Message() << "sp " << sp << " compute " << dtype_name(c));
      testing::check_column_parallel_linear(world(), sp, c);
    }
}

TEST(TensorParallel, RowParallelLinear) {
  for (bool sp : {false, true})
    for (DType c : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(::testing::Message() << "sp " << sp << " compute " << dtype_name(c));
      testing::check_row_parallel_linear(world(), sp, c);
    }
}

TEST(TensorParallel, SwigluMlpEqualsMlp) {
  for (bool sp : {false, true}) {
    SCOPED_TRACE(::testing::Message() << "sp " << sp);
    testing::check_parallel_mlp(world(), sp);
  }
}

TEST(TensorParallel, AttentionWithHeadsSplitEqualsAttention) {
  for (bool sp : {false, true})
    for (bool qk : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "sp " << sp << " qk_layernorm " << qk);
      testing::check_parallel_attention(world(), sp, qk);
    }
}

// Qwen2's QKV bias (split like linear_qkv's rows) and Llama 3 RoPE scaling.
TEST(TensorParallel, AttentionWithQkvBiasAndRopeScalingEqualsAttention) {
  for (bool sp : {false, true})
    for (bool scaling : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "sp " << sp << " rope_scaling " << scaling);
      testing::check_parallel_attention(world(), sp, /*qk_layernorm=*/false, /*qkv_bias=*/true, scaling);
    }
}

TEST(TensorParallel, VocabParallelEmbedding) {
  for (bool sp : {false, true}) {
    SCOPED_TRACE(::testing::Message() << "sp " << sp);
    testing::check_vocab_parallel_embedding(world(), sp);
  }
}

TEST(TensorParallel, VocabParallelCrossEntropyEqualsFused) {
  testing::check_vocab_parallel_cross_entropy(world(), 0.0, 0.f);
  testing::check_vocab_parallel_cross_entropy(world(), 37.0, 1e-3f);
}

TEST(TensorParallel, SizesNotDivisibleByTpAreErrors) {
  const int p = world().size();
  const std::string e = testing::error_of([&] { ColumnParallelLinear({.in = 4, .out = p + 1}, world()); });
  EXPECT_NE(e.find("ColumnParallelLinear: out: " + std::to_string(p + 1) + " is not divisible by the "
                   "tensor-parallel size " + std::to_string(p)), std::string::npos) << e;
  EXPECT_NE(testing::error_of([&] { ParallelMLP({.hidden = 4, .ffn = p + 1}, world()); })
                .find("is not divisible by the tensor-parallel size"), std::string::npos);
  EXPECT_NE(testing::error_of([&] { VocabParallelEmbedding({.vocab = p + 1, .hidden = 4}, world()); })
                .find("VocabParallelEmbedding: vocab"), std::string::npos);
  const Attention::Config ac{.hidden = 8 * p, .num_heads = 2 * p, .num_kv_heads = p / 2};
  EXPECT_NE(testing::error_of([&] { ParallelAttention({.attn = ac}, world()); })
                .find("num_query_groups " + std::to_string(p / 2) + " must be divisible"), std::string::npos);
}

}  // namespace
}  // namespace foundry
