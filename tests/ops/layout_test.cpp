#include "foundry/ops/layout.h"

#include "foundry/backend/cpu/ref/layout_ref.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::nan_filled;
using testing::randn;

struct Heads {
  int64_t T, NH, NKV, HD;
};

class QkvSplit : public ::testing::TestWithParam<Heads> {};

TEST_P(QkvSplit, MatchesReferenceBothWays) {
  const auto [T, NH, NKV, HD] = GetParam();
  Tensor qkv = randn({T, (NH + 2 * NKV) * HD}, 1);
  Tensor q = nan_filled({T, NH, HD}), k = nan_filled({T, NKV, HD}), v = nan_filled({T, NKV, HD});
  Tensor q_ref = Tensor::empty({T, NH, HD}), k_ref = Tensor::empty({T, NKV, HD}), v_ref = Tensor::empty({T, NKV, HD});
  qkv_split_forward({.num_heads = NH, .num_kv_heads = NKV, .qkv = qkv, .q = q, .k = k, .v = v});
  ref::qkv_split_forward({.num_heads = NH, .num_kv_heads = NKV, .qkv = qkv, .q = q_ref, .k = k_ref, .v = v_ref});
  EXPECT_TRUE(testing::allclose(q, q_ref, 0, 0));
  EXPECT_TRUE(testing::allclose(k, k_ref, 0, 0));
  EXPECT_TRUE(testing::allclose(v, v_ref, 0, 0));
  // Backward is the exact inverse (a permutation): merging the split gives qkv back.
  Tensor merged = nan_filled(qkv.shape()), merged_ref = Tensor::empty(qkv.shape());
  qkv_split_backward({.num_heads = NH, .num_kv_heads = NKV, .qkv = merged, .q = q, .k = k, .v = v});
  ref::qkv_split_backward({.num_heads = NH, .num_kv_heads = NKV, .qkv = merged_ref, .q = q, .k = k, .v = v});
  EXPECT_TRUE(testing::allclose(merged, qkv, 0, 0));
  EXPECT_TRUE(testing::allclose(merged_ref, qkv, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(OddShapes, QkvSplit,
                         ::testing::Values(Heads{1, 1, 1, 1}, Heads{7, 4, 2, 13}, Heads{37, 6, 1, 3},
                                           Heads{13, 8, 8, 16}, Heads{61, 12, 3, 7}));

TEST(QkvSplit, GroupLayoutIsMegatrons) {
  // T = 1, NH = 4, NKV = 2, HD = 1: rows are [q0 q1 k0 v0 | q2 q3 k1 v1].
  Tensor qkv = Tensor::from({1, 8}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor q = Tensor::empty({1, 4, 1}), k = Tensor::empty({1, 2, 1}), v = Tensor::empty({1, 2, 1});
  qkv_split_forward({.num_heads = 4, .num_kv_heads = 2, .qkv = qkv, .q = q, .k = k, .v = v});
  EXPECT_EQ(q.to_vector(), (std::vector<float>{0, 1, 4, 5}));
  EXPECT_EQ(k.to_vector(), (std::vector<float>{2, 6}));
  EXPECT_EQ(v.to_vector(), (std::vector<float>{3, 7}));
}

TEST(QkvSplit, RejectsMismatchedShapes) {
  Tensor q = Tensor::empty({3, 4, 2}), k = Tensor::empty({3, 2, 2}), v = Tensor::empty({3, 2, 2});
  try {
    qkv_split_forward({.num_heads = 4, .num_kv_heads = 2, .qkv = Tensor::empty({3, 15}), .q = q, .k = k, .v = v});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "qkv_split: qkv has shape (3, 15), expected (3, 16)");
  }
  EXPECT_THROW(qkv_split_forward({.num_heads = 4, .num_kv_heads = 3, .qkv = Tensor::empty({3, 16}),
                                  .q = q, .k = k, .v = v}),
               Error);
}

}  // namespace
}  // namespace foundry
