// Shot detection over a whole video file: decode (video_reader.h) to BGR24 analysis frames, run
// PySceneDetect's ContentDetector or AdaptiveDetector (content_detector.h), and list the scenes
// as `scenedetect list-scenes` does (`foundry curate --detect-only`).
//
// Analysis size (PySceneDetect 0.7's auto-downscale): with f = max(W, H) / 256, frames larger than
// 256 px are decoded at round(W / f) x round(H / f) (swscale bilinear; PySceneDetect resizes with
// cv2.resize INTER_LINEAR, so scores on downscaled frames are close to, not bit-identical with,
// scenedetect's on the same file); `downscale` = 1 analyses the source size, an integer k > 1
// divides both sides by k. At the source size the frames are converted with the swscale flags
// OpenCV's VideoCapture uses (SWS_BICUBIC: swscale's unscaled yuv2rgb path), the conversion behind
// the frames PySceneDetect analyses (checked: identical bytes to cv2.VideoCapture (OpenCV 5.0) on
// the test video, and `scenedetect` 0.7.2 lists the same scenes).
// Detectors "scdet" and "select" are FFmpeg's scene scores, computed by libavfilter on the decoded
// frames at the source size (ffmpeg_scene_detector.h; `downscale` does not apply).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "foundry/video/content_detector.h"
#include "foundry/video/ffmpeg_scene_detector.h"
#include "foundry/video/video_reader.h"

namespace foundry::video {

struct ShotDetectionOptions {
  std::string detector = "content";  // content | adaptive | scdet | select
  ContentDetectorOptions content;
  AdaptiveDetectorOptions adaptive;
  FfmpegSceneOptions ffmpeg;           // scdet | select (the detector name picks the filter)
  int downscale = 0;   // 0: auto (about 256 px on the long side), 1: none, k: W/k x H/k
  int threads = 0;     // decoder threads, 0 = auto
};

struct ShotList {
  VideoInfo info;
  int analysis_width = 0, analysis_height = 0;
  int64_t frames = 0;                // frames decoded
  std::vector<int64_t> cuts;         // first frame of each new scene
  std::vector<Scene> scenes;         // [start, end) frames covering every decoded frame
  std::vector<FrameScore> scores;    // per frame, scenedetect's StatsManager metrics (content | adaptive)
  std::vector<double> filter_scores;  // per frame, scdet: lavfi.scd.score, select: lavfi.scene_score
  std::vector<double> filter_mafd;    // per frame, scdet: lavfi.scd.mafd (empty otherwise)
  int64_t decode_errors = 0;         // > 0: the file is damaged; the scenes cover what decoded
  std::string error_message;
  double wall_seconds = 0;           // decode + detect
};

// Decodes `path` and detects its shots. Errors name the file (missing, not a video) and the option.
ShotList detect_shots(const std::string& path, const ShotDetectionOptions& options = {});

// The analysis size for a source of width x height under `downscale` (see the file header).
std::pair<int, int> analysis_size(int width, int height, int downscale);

// JSON for `foundry curate --detect-only`: {"video", "fps", "frames", "width", "height",
// "analysis_width", "analysis_height", "detector": {...}, "cuts": [...], "scenes": [{"index" (1-based),
// "start_frame", "end_frame" (exclusive), "start_timecode", "end_timecode", "start_time", "end_time",
// "length_frames", "length_seconds"}], "decode_errors", "error" (when damaged), "video_seconds_per_second"}.
// scdet / select add "scores" (and scdet "mafd"): the filter's value for every frame.
nlohmann::json shots_json(const ShotList& shots, const ShotDetectionOptions& options);

}  // namespace foundry::video
