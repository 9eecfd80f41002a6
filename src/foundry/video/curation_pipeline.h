// `foundry curate INPUT... -o OUT_DIR`: the video curation pipeline (Cosmos / NeMo video curator,
// reference/video.md b.1-b.7), from raw videos to clean, deduplicated, sharded clips.
//
// Stages, run by a pool of workers over two queues (clip tasks first, so that finished shots
// flow out while later videos are still being decoded):
//   detect    (per video)  decode at the analysis size, shot detection (shot_detection.h),
//                          clip splitting with the cosmos-curate rules (clip_splitter.h);
//   transcode (per clip)   seek + decode + H.264 MP4 at the target size and frame rate
//                          (clip_transcoder.h), and on the same frames: static / blank statistics
//                          (frame_statistics.h) and the perceptual fingerprint (perceptual_hash.h);
//   motion    (per clip)   codec motion vectors of the written clip (motion_filter.h);
//   finalize  (per video)  OUT/videos/<video>.json, written atomically: the video is done;
//   decide    (once)       every filter's threshold applied to the recorded scores, near-duplicate
//                          grouping across all clips (dedup.h), OUT/clips.jsonl, WebDataset shards
//                          (webdataset.h) of the kept clips, OUT/summary.json.
//
// Output directory:
//   clips/<video>/<clip>.mp4    every transcoded clip (run.keep_dropped_clips=false deletes dropped ones)
//   videos/<video>.json         per source: info, shots, split, every clip's scores and fingerprint
//   clips.jsonl                 one record per clip: source, span, fps, size, scores, dedup group,
//                               kept or the reasons it was dropped
//   shards/resolution_*/aspect_ratio_*/frames_*/{video,metas}/part_*/NNNNNN.tar
//   summary.json                counts, hours in / out, drop reasons, throughput per stage
//
// Robustness: a file that cannot be opened, or that decodes with errors (truncated, corrupt), is
// reported in the summary and skipped; the others go on. A re-run skips videos whose record is
// done under the same detect / split / transcode settings (CurateConfig::processing_key) and only
// re-applies filters, dedup and sharding, so filter thresholds change without decoding anything.
// Clip files are written as <clip>.mp4.partial and renamed when complete, and a video's record is
// written last: an interrupted run never leaves a partial clip or an unfinished video marked done.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "foundry/video/curate_config.h"

namespace foundry::video {

// Video files named by `inputs`: files as given, directories searched recursively for the usual
// video extensions (sorted). Errors name a path that does not exist.
std::vector<std::string> expand_video_inputs(const std::vector<std::string>& inputs);

// A stable, file-name-safe id for a source: its sanitised stem and the CRC32C of its absolute path.
std::string source_video_id(const std::string& path);

struct CurationResult {
  nlohmann::json summary;             // as written to OUT/summary.json
  std::vector<nlohmann::json> clips;  // as written to OUT/clips.jsonl
};

// The shot-detection options of `config`'s detect section (one decoder thread: the pool runs a task per core).
struct ShotDetectionOptions;
ShotDetectionOptions shot_detection_options(const CurateConfig& config);

// Runs the pipeline over `videos` into out_dir (created). `log` receives one line per finished video.
CurationResult run_curation(const std::vector<std::string>& videos, const std::string& out_dir,
                            const CurateConfig& config, const std::function<void(const std::string&)>& log = {});

// The summary as a short human-readable report (what `foundry curate` prints).
std::string summary_report(const nlohmann::json& summary);

}  // namespace foundry::video
