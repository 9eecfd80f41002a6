// FFmpeg's scene-change scores as a shot detector, computed by libavfilter itself (not re-implemented;
// reference/video.md e.3): the decoder's native frames (VideoReader::decoded(), e.g. yuv420p) go
// through the graph  buffer -> scdet=threshold=T | select='gte(scene,0)' -> buffersink  and each
// output frame's metadata is read back.
//
// The formulas (FFmpeg 5.1, libavfilter/vf_scdet.c and f_select.c; the same in 4.x): over the luma
// plane of planar YUV (every plane, width = linesize bytes, for packed RGB / GRAY8) of two consecutive
// frames of the same size, SAD = sum |Y_t - Y_(t-1)|, count = w * h, prev_mafd starts at 0, the first
// frame scores 0:
//   scdet:  mafd = SAD * 100 / count / 2^bitdepth            (percent of full scale)
//           score = clip(min(mafd, |mafd - prev_mafd|), 0, 100); a cut when score >= threshold (default 10)
//           metadata "lavfi.scd.mafd", "lavfi.scd.score" printed "%0.3f", "lavfi.scd.time" on cuts
//   select: mafd = SAD / count / 2^(bitdepth - 8)
//           scene = clip(min(mafd, |mafd - prev_mafd|) / 100, 0, 1); `select='gt(scene,0.4)'` cuts at 0.4
//           metadata "lavfi.scene_score" printed "%f"
// The stored values are those printed numbers (3 resp. 6 decimals). scdet's cut is the filter's own
// decision (it set lavfi.scd.time: the unrounded score >= T); select's is the printed scene > T.
// Formats either filter does not accept are converted by an auto-inserted scale filter first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "foundry/video/video_reader.h"

namespace foundry::video {

struct FfmpegSceneOptions {
  std::string filter = "scdet";  // scdet | select
  double threshold = -1;         // -1: the filter's default: scdet 10 (score in percent 0..100),
                                 //     select 0.4 (scene 0..1)
  int64_t min_scene_len = 0;     // frames; cuts closer than this to the previous cut (or to frame 0) are dropped
  int threads = 0;               // decoder threads, 0 = auto
};

struct FfmpegSceneScores {  // per decoded frame, exactly libavfilter's metadata values
  VideoInfo info;
  int64_t frames = 0;
  std::vector<double> score;   // [frames] scdet: lavfi.scd.score (0..100); select: lavfi.scene_score (0..1)
  std::vector<double> mafd;    // [frames] scdet: lavfi.scd.mafd (empty for select)
  std::vector<int64_t> cuts;   // first frame of each new scene, after min_scene_len
  double threshold = 0;        // the threshold used (the default resolved)
  int64_t decode_errors = 0;   // > 0: the file is damaged; the scores cover what decoded
  std::string error_message;
  double wall_seconds = 0;     // decode + filter
};

// The threshold options.threshold stands for (-1: the filter's default); checks the filter name and range.
double ffmpeg_scene_threshold(const FfmpegSceneOptions& options);

// Decodes `path` and runs the filter over every frame. Errors (foundry::Error) name the file: missing
// or not a video, a filter other than scdet / select, a threshold out of the filter's range.
FfmpegSceneScores ffmpeg_scene_scores(const std::string& path, const FfmpegSceneOptions& options = {});

}  // namespace foundry::video
