#include "foundry/train/expert_load.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace foundry {
namespace {

// A record at `step` with moe_load.L.E = load(L, E) for the given layers and experts (fields
// appended directly: MetricsRecord::set searches linearly, slow for thousands of fields).
template <class F>
MetricsRecord loads(int64_t step, const std::vector<int64_t>& layers, int64_t experts, F load) {
  MetricsRecord r{.step = step};
  for (int64_t l : layers)
    for (int64_t e = 0; e < experts; ++e) r.fields.emplace_back(fmt::format("moe_load.{}.{}", l, e), load(l, e));
  return r;
}

TEST(ExpertLoad, FieldNamesParseStrictly) {
  const auto f = parse_expert_load_field("moe_load.3.17");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->layer, 3);
  EXPECT_EQ(f->expert, 17);
  EXPECT_TRUE(parse_expert_load_field("moe_load.0.0").has_value());
  EXPECT_EQ(parse_expert_load_field("moe_load.123456789.5")->layer, 123456789);
  for (const char* bad : {"moe_load.x.y", "moe_load.1.y", "moe_load.x.1", "moe_load.1", "moe_load.1.", "moe_load..1",
                          "moe_load.", "moe_load", "moe_load.1.2.3", "moe_load.-1.0", "moe_load.+1.0", "moe_load. 1.0",
                          "moe_load.1.2x", "moe_load.1234567890.0", "xmoe_load.1.2", "moe_max_load", "MOE_LOAD.1.2"})
    EXPECT_FALSE(parse_expert_load_field(bad).has_value()) << bad;
  EXPECT_FALSE(has_expert_load({MetricsRecord{.step = 1, .fields = {{"moe_load.x.y", 1.0}, {"moe_aux_loss", 0.1}}}}));
  EXPECT_TRUE(has_expert_load({MetricsRecord{.step = 1}, MetricsRecord{.step = 2, .fields = {{"moe_load.0.1", 1.0}}}}));
}

TEST(ExpertLoad, GridRowsByLayerThenExpertAndLastRecordPerStep) {
  // Layers 3 and 1 (written out of order), 4 experts, steps 10..50 with the load 10*L + E + step/10;
  // a validation record, a malformed name, a NaN and a resumed step 30 in between.
  auto load = [](int64_t step) { return [step](int64_t l, int64_t e) { return 10.0 * l + e + step / 10.0; }; };
  std::vector<MetricsRecord> r;
  for (int64_t s : {10, 20, 30, 40}) r.push_back(loads(s, {3, 1}, 4, load(s)));
  r[1].fields.emplace_back("moe_load.x.y", 99.0);
  r[1].fields.emplace_back("valid_loss", 2.0);
  r.push_back(MetricsRecord{.step = 45, .fields = {{"valid_loss", 2.0}}});  // no moe fields: no column
  r.push_back(loads(30, {3, 1}, 4, [](int64_t, int64_t) { return 7.0; }));  // resumed: replaces step 30
  r.back().fields[0].second = std::nan("");                               // moe_load.3.0 at step 30
  r.push_back(loads(50, {3, 1}, 4, load(50)));

  const ExpertLoadGrid g = collect_expert_load(r);
  ASSERT_EQ(g.rows.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(g.rows[i].layer, i < 4 ? 1 : 3);
    EXPECT_EQ(g.rows[i].first_expert, static_cast<int64_t>(i % 4));
    EXPECT_EQ(g.rows[i].last_expert, static_cast<int64_t>(i % 4));
  }
  EXPECT_EQ(g.steps, (std::vector<int64_t>{10, 20, 30, 40, 50}));
  ASSERT_EQ(g.cols.size(), 5u);
  EXPECT_EQ(g.experts_per_row, 1);
  EXPECT_EQ(g.steps_per_col, 1u);
  EXPECT_DOUBLE_EQ(g.at(0, 0), 11.0);  // layer 1 expert 0 at step 10
  EXPECT_DOUBLE_EQ(g.at(7, 4), 38.0);  // layer 3 expert 3 at step 50
  EXPECT_DOUBLE_EQ(g.at(5, 1), 33.0);  // step 20: the malformed field changed nothing
  EXPECT_DOUBLE_EQ(g.at(1, 2), 7.0);   // step 30: the later record
  EXPECT_TRUE(std::isnan(g.at(4, 2)));  // its NaN leaves the cell empty

  EXPECT_TRUE(collect_expert_load({MetricsRecord{.step = 1, .fields = {{"loss", 1.0}}}}).empty());
}

TEST(ExpertLoad, LargeGridsAreBinnedByExpertAndByStep) {
  // 10 steps into 4 columns: [0,2) [2,5) [5,7) [7,10), each the mean of its steps.
  std::vector<MetricsRecord> r;
  for (int64_t s = 0; s < 10; ++s) r.push_back(loads(s, {0}, 2, [s](int64_t, int64_t e) { return s + 100.0 * e; }));
  ExpertLoadGrid g = collect_expert_load(r, {.max_rows = 1000, .max_cols = 4, .max_cells = 1000});
  ASSERT_EQ(g.cols.size(), 4u);
  EXPECT_EQ(g.cols[1], (std::pair<size_t, size_t>{2, 5}));
  EXPECT_EQ(g.steps_per_col, 3u);
  EXPECT_DOUBLE_EQ(g.at(0, 0), 0.5);
  EXPECT_DOUBLE_EQ(g.at(0, 1), 3.0);
  EXPECT_DOUBLE_EQ(g.at(1, 3), 108.0);
  // The cell budget limits the columns too: 2 rows x at most 3 cells / 2 rows = 1 column.
  g = collect_expert_load(r, {.max_rows = 1000, .max_cols = 400, .max_cells = 3});
  ASSERT_EQ(g.cols.size(), 1u);
  EXPECT_DOUBLE_EQ(g.at(0, 0), 4.5);

  // 2 layers x 128 experts into at most 64 rows: 4 experts per row; row 1 = experts 4..7 of layer 0.
  const auto e_load = [](int64_t l, int64_t e) { return l + e / 100.0; };
  g = collect_expert_load({loads(1, {0, 5}, 128, e_load)}, {.max_rows = 64});
  ASSERT_EQ(g.rows.size(), 64u);
  EXPECT_EQ(g.experts_per_row, 4);
  EXPECT_EQ(g.rows[1].first_expert, 4);
  EXPECT_EQ(g.rows[1].last_expert, 7);
  EXPECT_EQ(g.rows[32].layer, 5);
  EXPECT_NEAR(g.at(1, 0), 0.055, 1e-12);
  // 3 layers x 10 experts into at most 10 rows: 4 per row would fit (9 rows, the last of each layer
  // holding 2), but 5 splits every layer evenly (6 rows).
  g = collect_expert_load({loads(1, {0, 1, 2}, 10, e_load)}, {.max_rows = 10});
  EXPECT_EQ(g.experts_per_row, 5);
  EXPECT_EQ(g.rows.size(), 6u);
  // More layers than rows: one row per layer at worst.
  g = collect_expert_load({loads(1, {0, 1, 2, 3}, 3, e_load)}, {.max_rows = 2});
  EXPECT_EQ(g.rows.size(), 4u);
  EXPECT_EQ(g.experts_per_row, 3);
}

TEST(ExpertLoad, ColorMapIsWhiteAtOneBlueAtZeroRedFromTwo) {
  EXPECT_EQ(expert_load_color(1.0), "#ffffff");
  EXPECT_EQ(expert_load_color(0.0), "#2166ac");
  EXPECT_EQ(expert_load_color(-3.0), "#2166ac");
  EXPECT_EQ(expert_load_color(0.5), "#92c5de");
  EXPECT_EQ(expert_load_color(0.75), "#c9e2ef");  // halfway between #92c5de and #ffffff
  EXPECT_EQ(expert_load_color(1.5), "#f4a582");
  EXPECT_EQ(expert_load_color(2.0), "#b2182b");
  EXPECT_EQ(expert_load_color(64.0), "#b2182b");
  EXPECT_EQ(expert_load_color(INFINITY), "#b2182b");
  EXPECT_EQ(expert_load_color(std::nan("")), "");
  const auto stops = expert_load_color_stops();
  ASSERT_EQ(stops.size(), 5u);
  for (const auto& [load, color] : stops) EXPECT_EQ(expert_load_color(load), color);
}

}  // namespace
}  // namespace foundry
