// GroupedExperts' sharded parameters (expert parallelism over P ranks, expert tensor parallelism
// over Q ranks): the specs carry the full shapes (E, 2F, H) / (E, H, F) and the checkpoint names of
// the full tensors, and a shard's initial value is exactly the full init's slice (experts
// [p E/P, (p+1) E/P); fc1 rows [q F/Q, (q+1) F/Q) of the gate half then of the up half; fc2
// columns [q F/Q, (q+1) F/Q)), checked element by element against the one-process layer.
#include <gtest/gtest.h>

#include "foundry/moe/grouped_experts.h"
#include "testing.h"

namespace foundry {
namespace {

constexpr int64_t kE = 4, kF = 6, kH = 5;

TEST(GroupedExpertsShard, ShardInitIsTheSliceOfTheFullInit) {
  GroupedExperts full({.hidden = kH, .ffn = kF, .num_experts = kE, .init_std = 0.1f, .output_init_std = 0.2f});
  ParamTable full_table;
  full.register_params(full_table, "decoder.layers.0.mlp.experts");
  full_table.allocate(7);
  EXPECT_FALSE(full_table.spec(0).sharded());
  const int P = 2, Q = 3;
  const int64_t El = kE / P, Fl = kF / Q;
  for (int p = 0; p < P; ++p)
    for (int q = 0; q < Q; ++q) {
      GroupedExperts shard({.hidden = kH, .ffn = Fl, .num_experts = El, .init_std = 0.1f, .output_init_std = 0.2f,
                            .ep_rank = p, .ep_size = P, .etp_rank = q, .etp_size = Q});
      ParamTable table;
      shard.register_params(table, "decoder.layers.0.mlp.experts");
      table.allocate(7);
      const ParamSpec& s1 = table.spec(0);
      const ParamSpec& s2 = table.spec(1);
      EXPECT_EQ(s1.name, "decoder.layers.0.mlp.experts.linear_fc1.weight");
      EXPECT_EQ(s1.global_shape, Shape({kE, 2 * kF, kH}));
      EXPECT_EQ(s1.shape, Shape({El, 2 * Fl, kH}));
      EXPECT_EQ(s2.global_shape, Shape({kE, kH, kF}));
      EXPECT_EQ(s2.shape, Shape({El, kH, Fl}));
      EXPECT_EQ(s1.shard_group, "ep_etp");
      EXPECT_TRUE(s1.expert_local && s2.expert_local);
      const float* w1 = shard.linear_fc1.value.ptr<float>();
      const float* f1 = full.linear_fc1.value.ptr<float>();
      const float* w2 = shard.linear_fc2.value.ptr<float>();
      const float* f2 = full.linear_fc2.value.ptr<float>();
      for (int64_t l = 0; l < El; ++l) {
        const int64_t e = p * El + l;
        for (int64_t j = 0; j < 2 * Fl; ++j) {
          const int64_t row = j < Fl ? q * Fl + j : kF + q * Fl + (j - Fl);  // [gate_q; up_q]
          for (int64_t h = 0; h < kH; ++h)
            ASSERT_EQ(w1[(l * 2 * Fl + j) * kH + h], f1[(e * 2 * kF + row) * kH + h]) << p << q << l << j << h;
        }
        for (int64_t h = 0; h < kH; ++h)
          for (int64_t j = 0; j < Fl; ++j)
            ASSERT_EQ(w2[(l * kH + h) * Fl + j], f2[(e * kH + h) * kF + q * Fl + j]) << p << q << l << h << j;
      }
    }
}

TEST(GroupedExpertsShard, UnshardedWhenBothGroupsHaveOneRank) {
  GroupedExperts g({.hidden = kH, .ffn = kF, .num_experts = kE});
  ParamTable table;
  g.register_params(table, "mlp.experts");
  table.allocate(1);
  EXPECT_FALSE(table.spec(0).sharded());
  EXPECT_FALSE(table.spec(1).sharded());
  EXPECT_EQ(table.spec(0).shape, Shape({kE, 2 * kF, kH}));
}

}  // namespace
}  // namespace foundry
