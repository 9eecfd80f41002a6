// Which clips are kept: every filter's threshold applied to the scores recorded for a clip
// (so thresholds change without decoding), then near-duplicate grouping among the clips that pass
// (dedup.h: the clip with the most pixels x frames of each group is kept).
//
// A clip record (JSON, as the pipeline writes it) holds: "clip" (id), "duration", "width",
// "height", "frames", "source_width", "source_height", optional "error", and "scores":
// {"static_blank": {...}, "motion": {...}} and "fingerprint": [hex pHash per sampled frame].
// decide_clips sets "kept" (bool), "drop_reasons" (list of strings), "dedup_group" (int, or null
// for clips that did not pass the filters) and "duplicate_of" (clip id or null).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "foundry/video/curate_config.h"

namespace foundry::video {

void decide_clips(std::vector<nlohmann::json>& clips, const CurateConfig& config);

// The short reason key of a drop reason ("static", "blank", "low_motion", "duplicate", ...): the
// text before the first ':' — what the summary counts.
std::string reason_key(const std::string& reason);

}  // namespace foundry::video
