#include "foundry/video/shot_detection.h"

#include <chrono>
#include <cmath>

#include "foundry/core/check.h"

extern "C" {
#include <libswscale/swscale.h>
}

namespace foundry::video {

std::pair<int, int> analysis_size(int width, int height, int downscale) {
  FOUNDRY_CHECK(downscale >= 0, "shot detection: downscale must be 0 (auto), 1 (none) or a factor > 1, got {}",
                downscale);
  if (downscale == 1) return {width, height};
  if (downscale > 1) return {std::max(1, width / downscale), std::max(1, height / downscale)};
  const double f = static_cast<double>(std::max(width, height)) / 256.0;
  if (f <= 1.0) return {width, height};
  return {std::max(1, static_cast<int>(std::lround(width / f))), std::max(1, static_cast<int>(std::lround(height / f)))};
}

namespace {

// scdet | select: libavfilter's scores at the source size.
ShotList ffmpeg_shots(const std::string& path, const ShotDetectionOptions& o) {
  FfmpegSceneOptions f = o.ffmpeg;
  f.filter = o.detector;
  if (f.threads == 0) f.threads = o.threads;
  FfmpegSceneScores scores = ffmpeg_scene_scores(path, f);
  ShotList out;
  out.info = scores.info;
  out.analysis_width = scores.info.width;
  out.analysis_height = scores.info.height;
  out.frames = scores.frames;
  out.cuts = std::move(scores.cuts);
  out.scenes = scenes_from_cuts(out.cuts, 0, out.frames);
  out.filter_scores = std::move(scores.score);
  out.filter_mafd = std::move(scores.mafd);
  out.decode_errors = scores.decode_errors;
  out.error_message = scores.error_message;
  out.wall_seconds = scores.wall_seconds;
  return out;
}

}  // namespace

ShotList detect_shots(const std::string& path, const ShotDetectionOptions& o) {
  FOUNDRY_CHECK(o.detector == "content" || o.detector == "adaptive" || o.detector == "scdet" || o.detector == "select",
                "shot detection: detector must be content, adaptive, scdet or select, got '{}'", o.detector);
  if (o.detector == "scdet" || o.detector == "select") return ffmpeg_shots(path, o);
  const auto t0 = std::chrono::steady_clock::now();
  ShotList out;
  // Open once to learn the source size, then decode at the analysis size.
  int src_w = 0, src_h = 0;
  {
    const VideoReader probe(path);
    src_w = probe.info().width;
    src_h = probe.info().height;
  }
  const auto [aw, ah] = analysis_size(src_w, src_h, o.downscale);
  // At the source size, OpenCV's VideoCapture conversion (swscale with SWS_BICUBIC, the unscaled
  // yuv2rgb path), which produces the frames PySceneDetect analyses.
  const int sws_flags = aw == src_w && ah == src_h ? SWS_BICUBIC : 0;
  VideoReader reader(path, {.out_width = aw, .out_height = ah, .format = PixelFormat::bgr24, .threads = o.threads,
                            .sws_flags = sws_flags});
  out.info = reader.info();
  out.analysis_width = reader.out_width();
  out.analysis_height = reader.out_height();

  ContentDetector content(o.content);
  AdaptiveDetector adaptive(o.adaptive);
  const bool use_content = o.detector == "content";
  Frame frame;
  int64_t n = 0;
  while (reader.next(frame)) {
    // Frames are numbered as they come out of the decoder (scenedetect counts frames the same way).
    const FrameRef ref{.bgr = frame.data, .width = frame.width, .height = frame.height, .index = n};
    const std::optional<int64_t> cut = use_content ? content.process(ref) : adaptive.process(ref);
    if (cut) out.cuts.push_back(*cut);
    ++n;
  }
  for (int64_t c : use_content ? content.finish() : adaptive.finish()) out.cuts.push_back(c);
  out.frames = n;
  out.scores = use_content ? content.scores() : adaptive.scores();
  out.scenes = scenes_from_cuts(out.cuts, 0, n);
  out.decode_errors = reader.errors();
  out.error_message = reader.error_message();
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

nlohmann::json shots_json(const ShotList& s, const ShotDetectionOptions& o) {
  using json = nlohmann::json;
  const double fps = s.info.fps_value;
  json detector;
  if (o.detector == "content") {
    const ContentDetectorOptions& c = o.content;
    detector = {{"name", "content"},
                {"threshold", c.threshold},
                {"min_scene_len", c.min_scene_len},
                {"luma_only", c.luma_only},
                {"weights", {c.weights.hue, c.weights.sat, c.weights.lum, c.weights.edges}},
                {"filter_mode", c.filter_mode == FlashMode::merge ? "merge" : "suppress"}};
  } else if (o.detector == "scdet" || o.detector == "select") {
    FfmpegSceneOptions f = o.ffmpeg;
    f.filter = o.detector;
    detector = {{"name", o.detector},
                {"filter", o.detector == "scdet" ? "scdet" : "select='gte(scene,0)'"},
                {"threshold", ffmpeg_scene_threshold(f)},
                {"min_scene_len", f.min_scene_len}};
  } else {
    const AdaptiveDetectorOptions& a = o.adaptive;
    detector = {{"name", "adaptive"},
                {"adaptive_threshold", a.adaptive_threshold},
                {"min_scene_len", a.min_scene_len},
                {"window_width", a.window_width},
                {"min_content_val", a.min_content_val},
                {"luma_only", a.luma_only}};
  }
  json scenes = json::array();
  for (size_t i = 0; i < s.scenes.size(); ++i) {
    const Scene& sc = s.scenes[i];
    scenes.push_back({{"index", i + 1},
                      {"start_frame", sc.start},
                      {"end_frame", sc.end},
                      {"start_timecode", frame_timecode(sc.start, fps)},
                      {"end_timecode", frame_timecode(sc.end, fps)},
                      {"start_time", frame_seconds(sc.start, fps)},
                      {"end_time", frame_seconds(sc.end, fps)},
                      {"length_frames", sc.end - sc.start},
                      {"length_seconds", frame_seconds(sc.end - sc.start, fps)}});
  }
  json out = {{"video", s.info.path},
              {"fps", fps},
              {"frames", s.frames},
              {"width", s.info.width},
              {"height", s.info.height},
              {"analysis_width", s.analysis_width},
              {"analysis_height", s.analysis_height},
              {"detector", detector},
              {"cuts", s.cuts},
              {"scenes", scenes},
              {"decode_errors", s.decode_errors},
              {"video_seconds_per_second",
               s.wall_seconds > 0 && fps > 0 ? static_cast<double>(s.frames) / fps / s.wall_seconds : 0.0}};
  if (o.detector == "scdet" || o.detector == "select") out["scores"] = s.filter_scores;
  if (o.detector == "scdet") out["mafd"] = s.filter_mafd;
  if (s.decode_errors > 0) out["error"] = s.error_message;
  return out;
}

}  // namespace foundry::video
