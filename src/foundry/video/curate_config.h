// Configuration of `foundry curate` (the video curation pipeline, video/curation_pipeline.h):
// YAML (`--config curate.yaml`, sections below) plus `section.key=value` overrides, every key
// typed, unknown keys and impossible values named with the closest valid key (ARCHITECTURE §5).
// Defaults are the cosmos-curate / NeMo video curator ones (reference/video.md b.2-b.7).
//
// Sections: detect (shot detection), split (clip rules), transcode (clip encoding), filter
// (thresholds; applied to recorded scores, so changing them re-decodes nothing), dedup, shard,
// run. processing_key() fingerprints what changes the clips or their measurements (detect, split,
// transcode, and filter.blank_luma_std, which labels frames as they are measured): a finished
// video is processed again only when it changes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace foundry::video {

struct CurateDetectConfig {
  std::string detector = "content";  // content | adaptive (PySceneDetect) | scdet | select (FFmpeg's filters)
  double threshold = -1;             // -1: the detector's default (content 27, adaptive 3, scdet 10, select 0.4)
  int64_t min_scene_len = 15;        // frames
  bool luma_only = false;            // content / adaptive: score the V channel only
  int downscale = 0;                 // content / adaptive analysis size: 0 auto (~256 px), 1 none, K: W/K x H/K
};

struct CurateSplitConfig {
  double min_length_s = 2.0;
  int64_t min_length_frames = 48;
  double max_length_s = 60.0;
  std::string max_length_mode = "stride";  // stride | truncate
  double crop_s = 0.5;
};

struct CurateTranscodeConfig {
  int width = 0, height = 0;    // 0, 0: the source's; one 0 keeps the aspect ratio
  int max_short_side = 0;       // downscale so that min(W, H) <= this (never upscales); 0: off
  double fps = 0;               // 0: the source's frame rate
  int64_t bit_rate = 4'000'000; // b.3: H.264 at 4 Mb/s
  std::vector<std::string> codecs = {"libx264", "libopenh264"};
  std::string preset = "veryfast";
};

struct CurateFilterConfig {
  double min_duration_s = 0;    // clips are already >= split's minimum; 0: off
  double max_duration_s = 0;    // 0: off
  int min_short_side = 0;       // source resolution: min(W, H) below this is dropped; 0: off
  double min_aspect = 0, max_aspect = 0;  // W / H outside [min, max] is dropped; 0: off
  bool motion = true;           // cosmos-curate's motion-vector filter (b.4)
  double motion_global_mean = 0.00098;
  double motion_per_patch_min = 1e-6;
  int motion_min_short_side = 256;  // cosmos-curate scores only clips of min(W, H) >= 256 and drops the rest; 0: any size
  bool static_blank = true;     // blank frames / no change between frames
  double blank_luma_std = 4.0;  // a frame is blank below this luma standard deviation
  double blank_fraction = 0.9;  // a clip is blank when this share of its frames is
  double static_difference = 0.5;  // a clip is static below this mean |Y_t - Y_t-1|
};

struct CurateDedupConfig {
  bool enabled = true;
  int samples = 8;              // frames hashed per clip
  double max_distance = 6.0;    // mean Hamming distance (bits of 64) per sampled frame
};

struct CurateShardConfig {
  bool enabled = true;
  int samples_per_shard = 100;
  int frame_window = 256;
};

struct CurateRunConfig {
  int workers = 0;              // parallel tasks; 0: the number of cores
  bool keep_dropped_clips = true;  // false: delete the files of clips the filters or dedup drop
};

struct CurateConfig {
  CurateDetectConfig detect;
  CurateSplitConfig split;
  CurateTranscodeConfig transcode;
  CurateFilterConfig filter;
  CurateDedupConfig dedup;
  CurateShardConfig shard;
  CurateRunConfig run;

  // Parses YAML text (source names the file in errors), then applies overrides in order, then validates.
  static CurateConfig parse(const std::string& yaml_text, const std::string& source,
                            const std::vector<std::string>& overrides = {});
  static CurateConfig load(const std::string& path, const std::vector<std::string>& overrides = {});
  void set(const std::string& assignment);  // "filter.motion=false" (no validation)
  void validate() const;
  std::string to_yaml() const;             // every section and key
  std::string processing_key() const;      // hex CRC32C of detect, split, transcode and filter.blank_luma_std
};

}  // namespace foundry::video
