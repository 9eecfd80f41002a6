// Megatron's --split: parsing and normalisation, and the document ranges
// [round(c_k N), round(c_{k+1} N)) with Python's round-half-to-even.
#include "foundry/data/split.h"

#include "testing.h"

namespace foundry::testing {
namespace {

TEST(Split, ParsesAndNormalises) {
  const auto w = parse_split("969,30,1");
  EXPECT_DOUBLE_EQ(w[0], 0.969);
  EXPECT_DOUBLE_EQ(w[1], 0.030);
  EXPECT_DOUBLE_EQ(w[2], 0.001);
  EXPECT_EQ(parse_split("99,1"), (std::array<double, 3>{0.99, 0.01, 0.0}));
  EXPECT_EQ(parse_split("1"), (std::array<double, 3>{1.0, 0.0, 0.0}));
  EXPECT_EQ(parse_split("0.5/0.25/0.25"), (std::array<double, 3>{0.5, 0.25, 0.25}));
  EXPECT_EQ(parse_split("2 1 1"), (std::array<double, 3>{0.5, 0.25, 0.25}));
}

TEST(Split, RangesOfMegatronsDefault) {
  const auto r = split_ranges(parse_split("969,30,1"), 1000);
  EXPECT_EQ(r[0].begin, 0);
  EXPECT_EQ(r[0].end, 969);
  EXPECT_EQ(r[1].begin, 969);
  EXPECT_EQ(r[1].end, 999);
  EXPECT_EQ(r[2].begin, 999);
  EXPECT_EQ(r[2].end, 1000);
}

TEST(Split, RangesCoverEverythingWithoutOverlap) {
  for (const char* s : {"969,30,1", "98,2,0", "1,1,1", "7,2,1", "33,33,34"}) {
    for (const int64_t n : {0, 1, 2, 3, 10, 17, 101, 12345}) {
      const auto r = split_ranges(parse_split(s), n);
      int64_t at = 0;
      for (const auto& x : r) {
        if (x.empty()) continue;
        EXPECT_EQ(x.begin, at) << s << " N=" << n;
        at = x.end;
      }
      EXPECT_EQ(at, n) << s << " N=" << n;
    }
  }
}

TEST(Split, RoundsHalfToEvenLikePython) {
  // N = 10, 25/75: 2.5 -> 2 (Python round(2.5) == 2); N = 14: 3.5 -> 4.
  auto r = split_ranges(parse_split("25,75"), 10);
  EXPECT_EQ(r[0].end, 2);
  r = split_ranges(parse_split("25,75"), 14);
  EXPECT_EQ(r[0].end, 4);
}

TEST(Split, ZeroWeightSplitIsNotBuilt) {
  const auto r = split_ranges(parse_split("98,2,0"), 100);
  EXPECT_EQ(r[0].size(), 98);
  EXPECT_EQ(r[1].size(), 2);
  EXPECT_TRUE(r[2].empty());
}

TEST(Split, BadText) {
  EXPECT_ERROR_MENTIONS(parse_split("969,30,1,5"), "969,30,1,5", "got 4");
  EXPECT_ERROR_MENTIONS(parse_split("969;30"), "unexpected ';'");
  EXPECT_ERROR_MENTIONS(parse_split("-1,2"), "unexpected '-'");
  EXPECT_ERROR_MENTIONS(parse_split("0,0,0"), "sum to 0");
  EXPECT_ERROR_MENTIONS(parse_split(""), "got 0");
  EXPECT_ERROR_MENTIONS(parse_split("1.2.3"), "\"1.2.3\" is not a number");
}

}  // namespace
}  // namespace foundry::testing
