// `foundry curate` configuration (video/curate_config.h): YAML sections into typed fields,
// overrides, clear errors naming the key (with the closest valid one), and the processing key
// that changes only with the sections that change the clips.
#include "foundry/video/curate_config.h"

#include "testing.h"

namespace foundry::video {
namespace {

TEST(CurateConfig, DefaultsAreTheCosmosCurateOnes) {
  const CurateConfig c = CurateConfig::parse("", "empty.yaml");
  EXPECT_EQ(c.detect.detector, "content");
  EXPECT_EQ(c.split.min_length_s, 2.0);
  EXPECT_EQ(c.split.min_length_frames, 48);
  EXPECT_EQ(c.split.max_length_s, 60.0);
  EXPECT_EQ(c.split.crop_s, 0.5);
  EXPECT_EQ(c.transcode.bit_rate, 4'000'000);
  EXPECT_EQ(c.filter.motion_global_mean, 0.00098);
  EXPECT_EQ(c.filter.motion_per_patch_min, 1e-6);
}

TEST(CurateConfig, YamlAndOverridesSetTypedFields) {
  const CurateConfig c = CurateConfig::parse(
      "detect:\n  detector: scdet\n  threshold: 12.5\nsplit:\n  max_length_s: 10\n"
      "transcode:\n  codecs: libx264, mpeg4\n  max_short_side: 360\nfilter:\n  motion: false\n",
      "curate.yaml", {"dedup.max_distance=4", "transcode.codecs=[mpeg4]", "run.workers=3"});
  EXPECT_EQ(c.detect.detector, "scdet");
  EXPECT_EQ(c.detect.threshold, 12.5);
  EXPECT_EQ(c.split.max_length_s, 10.0);
  EXPECT_EQ(c.transcode.max_short_side, 360);
  EXPECT_EQ(c.transcode.codecs, std::vector<std::string>{"mpeg4"});  // the override came last
  EXPECT_FALSE(c.filter.motion);
  EXPECT_EQ(c.dedup.max_distance, 4.0);
  EXPECT_EQ(c.run.workers, 3);
  // to_yaml round-trips.
  const CurateConfig again = CurateConfig::parse(c.to_yaml(), "dump.yaml");
  EXPECT_EQ(again.to_yaml(), c.to_yaml());
  EXPECT_EQ(CurateConfig::parse("transcode:\n  codecs: libx264, mpeg4\n", "x").transcode.codecs,
            (std::vector<std::string>{"libx264", "mpeg4"}));
}

TEST(CurateConfig, ProcessingKeyFollowsOnlyClipChangingSections) {
  const CurateConfig base = CurateConfig::parse("", "a");
  EXPECT_EQ(CurateConfig::parse("", "a", {"filter.blank_fraction=0.5"}).processing_key(), base.processing_key());
  EXPECT_EQ(CurateConfig::parse("", "a", {"filter.motion_global_mean=0.01"}).processing_key(), base.processing_key());
  // Frames are labelled blank as they are measured: that threshold needs the frames again.
  EXPECT_NE(CurateConfig::parse("", "a", {"filter.blank_luma_std=9"}).processing_key(), base.processing_key());
  EXPECT_EQ(CurateConfig::parse("", "a", {"dedup.enabled=false"}).processing_key(), base.processing_key());
  EXPECT_NE(CurateConfig::parse("", "a", {"split.crop_s=0"}).processing_key(), base.processing_key());
  EXPECT_NE(CurateConfig::parse("", "a", {"transcode.fps=12"}).processing_key(), base.processing_key());
  EXPECT_NE(CurateConfig::parse("", "a", {"detect.threshold=30"}).processing_key(), base.processing_key());
}

TEST(CurateConfig, TheShippedConfigListsTheDefaults) {
  const CurateConfig shipped = CurateConfig::load(std::string(FOUNDRY_SOURCE_DIR) + "/configs/curate/default.yaml");
  EXPECT_EQ(shipped.to_yaml(), CurateConfig::parse("", "defaults").to_yaml());
}

TEST(CurateConfig, BadInputNamesTheKey) {
  EXPECT_ERROR_MENTIONS(CurateConfig::parse("filtr:\n  motion: false\n", "c.yaml"), "c.yaml", "'filtr'",
                        "did you mean 'filter'");
  EXPECT_ERROR_MENTIONS(CurateConfig::parse("filter:\n  motoin: false\n", "c.yaml"), "filter.motoin",
                        "did you mean 'filter.motion'");
  EXPECT_ERROR_MENTIONS(CurateConfig::parse("split:\n  crop_s: half\n", "c.yaml"), "split.crop_s", "'half'", "number");
  EXPECT_ERROR_MENTIONS(CurateConfig::parse("detect:\n  detector: transnet\n", "c.yaml"), "detect.detector 'transnet'");
  EXPECT_ERROR_MENTIONS(CurateConfig::parse("", "c.yaml", {"dedup.max_distance=65"}), "dedup.max_distance 65");
  EXPECT_ERROR_MENTIONS(CurateConfig::parse("", "c.yaml", {"dedup"}), "section.key=value");
  EXPECT_ERROR_MENTIONS(CurateConfig::parse("detect: [1, 2]\n", "c.yaml"), "section 'detect' must be a map");
  EXPECT_ERROR_MENTIONS(CurateConfig::load("/nonexistent/curate.yaml"), "/nonexistent/curate.yaml");
}

}  // namespace
}  // namespace foundry::video
