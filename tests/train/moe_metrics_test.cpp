#include "foundry/train/moe_metrics.h"

#include "testing.h"

namespace foundry {
namespace {

MoELayerStats layer(int64_t index, std::vector<int64_t> n, int64_t routed, int64_t dropped, double aux, double z) {
  return {.layer = index, .tokens_per_expert = std::move(n), .routed = routed, .dropped = dropped, .aux_loss = aux,
          .z_loss = z};
}

TEST(MoEIntervalStats, LoadsDropsAndLossesOverAnInterval) {
  MoEIntervalStats s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.log_suffix(), "");
  s.add_step({layer(1, {4, 0, 2, 2}, 8, 0, 0.010, 0.001), layer(3, {2, 2, 2, 2}, 10, 2, 0.020, 0.003)});
  s.add_step({layer(1, {0, 4, 2, 2}, 8, 0, 0.030, 0.001), layer(3, {2, 2, 2, 2}, 10, 2, 0.040, 0.003)});
  // Layer 1 over both steps: counts 4 4 4 4 -> balanced; layer 3 balanced as well.
  EXPECT_EQ(s.load(0), (std::vector<double>{1, 1, 1, 1}));
  EXPECT_DOUBLE_EQ(s.max_load(), 1.0);
  EXPECT_DOUBLE_EQ(s.dropped_frac(), 4.0 / 36.0);
  EXPECT_DOUBLE_EQ(s.aux_loss(), (0.010 + 0.020 + 0.030 + 0.040) / 4);
  EXPECT_DOUBLE_EQ(s.z_loss(), (0.001 + 0.003 + 0.001 + 0.003) / 4);
  MetricsRecord r{.step = 10};
  s.write(r);
  EXPECT_EQ(*r.get("moe_load.3.2"), 1.0);
  EXPECT_FALSE(r.get("moe_load.0.0"));
  EXPECT_NE(s.log_suffix().find("dropped 11.1%"), std::string::npos) << s.log_suffix();
  s.reset();
  s.add_step({layer(1, {6, 0, 1, 1}, 8, 0, 0, 0), layer(3, {2, 2, 2, 2}, 8, 0, 0, 0)});
  EXPECT_EQ(s.load(0), (std::vector<double>{3, 0, 0.5, 0.5}));
  EXPECT_DOUBLE_EQ(s.max_load(), 3.0);
  EXPECT_ERROR_MENTIONS(s.add_step({layer(1, {1, 1, 1, 1}, 4, 0, 0, 0)}), "MoEIntervalStats");
}

}  // namespace
}  // namespace foundry
