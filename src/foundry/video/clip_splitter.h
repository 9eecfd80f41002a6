// Clip splitting: shots (scenes in frames) -> clip spans, with the cosmos-curate rules
// (reference/video.md b.2 "Post-processing"; NeMo Curator's _get_filtered_scenes, the same code):
//   1. max length, "stride" mode: a shot longer than max_length frames is cut into consecutive
//      spans of max_length; the last span is dropped when it is shorter than min_length;
//      ("truncate" mode keeps only the first max_length frames of each shot);
//   2. crop crop_length frames from both ends of every span (spans left empty are dropped);
//   3. drop spans shorter than min_length.
// Lengths in frames from seconds at the source fps, as upstream: max_length = int(max_s * fps),
// crop_length = int(crop_s * fps), min_length = max(ceil(min_s * fps), min_frames) (2 s, 48 frames).
// Every span that does not become a clip is reported with its reason, so the metadata can say
// where each part of a shot went.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "foundry/video/content_detector.h"

namespace foundry::video {

struct SplitOptions {
  double min_length_s = 2.0;
  int64_t min_length_frames = 48;  // min_length = max(ceil(min_length_s * fps), this)
  double max_length_s = 60.0;      // 0 = no maximum
  std::string max_length_mode = "stride";  // stride | truncate
  double crop_s = 0.5;             // from each end
};

struct ClipRange {
  int64_t shot = 0;                  // index of the shot it came from
  int64_t start_frame = 0, end_frame = 0;  // [start, end) in source frames
};

struct DroppedRange {
  int64_t shot = 0;
  int64_t start_frame = 0, end_frame = 0;  // before cropping
  std::string reason;  // "shorter than min_length (N < M frames)", "last stride span shorter than ...", "empty after crop"
};

struct SplitResult {
  int64_t min_length = 0, max_length = 0, crop_length = 0;  // frames
  std::vector<ClipRange> clips;
  std::vector<DroppedRange> dropped;
};

// Splits `shots` (sorted, [start, end) frames) at `fps` (> 0). Errors name the option.
SplitResult split_clips(const std::vector<Scene>& shots, double fps, const SplitOptions& options = {});

}  // namespace foundry::video
