// VocabParallelEmbedding and vocab_parallel_cross_entropy with TP = 1 equal nn::Embedding and
// cross_entropy_fused.
#include "foundry/comm/communicator.h"
#include "tp_checks.h"

namespace foundry {
namespace {

TEST(VocabParallel, OneRankEmbeddingEqualsEmbedding) {
  auto self = make_self_communicator("tp");
  testing::check_vocab_parallel_embedding(*self, false);
  testing::check_vocab_parallel_embedding(*self, true);
}

TEST(VocabParallel, OneRankCrossEntropyEqualsFused) {
  auto self = make_self_communicator("tp");
  testing::check_vocab_parallel_cross_entropy(*self, 0.0, 0.f);
  testing::check_vocab_parallel_cross_entropy(*self, 37.0, 1e-3f);
}

TEST(VocabParallel, OutOfRangeIdIsAnError) {
  auto self = make_self_communicator("tp");
  VocabParallelEmbedding emb({.vocab = 8, .hidden = 2}, *self);
  ParamTable t;
  emb.register_params(t, "emb");
  t.allocate(1);
  Context ctx;
  VocabParallelEmbedding::Saved s;
  Tensor ids = Tensor::from<int32_t>({2}, std::vector<int32_t>{3, 8});
  EXPECT_NE(testing::error_of([&] { emb.forward(ctx, ids, s); }).find("token id 8 at 1 is outside [0, 8)"),
            std::string::npos);
}

}  // namespace
}  // namespace foundry
