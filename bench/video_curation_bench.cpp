// Video curation throughput, measured in one run against FFmpeg's own scene detection:
//
//   0. data: --videos N generated 720p H.264 videos (1280x720, 24 fps, --seconds S each; shots
//      of moving stripes, a static texture and flat colour, a cut every 3 s), written once into
//      --dir and reused.
//   1. reference: FFmpeg's scene-detection filter `scdet` over every file (libavfilter 5.1 through
//      video/ffmpeg_scene_detector.h: decode with FFmpeg's automatic frame threads + scdet, what
//      `ffmpeg -i F -vf scdet -f null -` runs), one file after another.
//   2. detect: PySceneDetect's ContentDetector (video/shot_detection.h, auto downscale to
//      ~256 px), decoder threads auto, one file after another.
//   3. pipeline: `foundry curate` on all files (video/curation_pipeline.h) with --workers tasks:
//      detect -> split -> transcode (H.264 4 Mb/s) -> static/blank + fingerprint -> motion
//      vectors -> decide -> shards; and each stage's throughput in video-seconds per
//      thread-second from the run's summary. --preset (x264, default veryfast) and --max-short-side
//      (default 0: the source's 720p) set the transcode.
// Throughput everywhere is video-seconds per wall-second; ratios are against (1) in the same run.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "foundry/video/curation_pipeline.h"
#include "foundry/video/ffmpeg_scene_detector.h"
#include "foundry/video/shot_detection.h"
#include "foundry/video/video_writer.h"

namespace {

namespace fs = std::filesystem;
using namespace foundry::video;
using Clock = std::chrono::steady_clock;

constexpr int kW = 1280, kH = 720, kFps = 24;

void frame(int video, int t, std::vector<uint8_t>& f) {
  const int shot = t / (3 * kFps);
  const int kind = (shot + video) % 4;  // 0, 1: moving stripes; 2: static texture; 3: flat colour
  const uint8_t base[4][3] = {{200, 90, 40}, {60, 180, 70}, {40, 60, 190}, {120, 120, 120}};
  const double phase = 2.0 * t;
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      double v = 0;
      if (kind == 0) v = 50 * std::sin(2 * M_PI * (x - phase) / 97.0) + 20 * std::sin(2 * M_PI * y / 41.0);
      else if (kind == 1) v = 50 * std::sin(2 * M_PI * (y + phase) / 71.0) * std::cos(2 * M_PI * x / 131.0);
      else if (kind == 2) v = 50 * std::sin(2 * M_PI * x / 53.0) * std::cos(2 * M_PI * y / 37.0);
      uint8_t* p = &f[(size_t(y) * kW + x) * 3];
      for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(std::clamp(base[(shot + video) % 4][c] + v, 0.0, 255.0));
    }
}

std::vector<std::string> make_videos(const fs::path& dir, int n, int seconds) {
  fs::create_directories(dir);
  std::vector<std::string> paths;
  std::vector<uint8_t> f(size_t(kW) * kH * 3);
  for (int v = 0; v < n; ++v) {
    const fs::path p = dir / fmt::format("video{}_{}s.mp4", v, seconds);
    paths.push_back(p.string());
    if (fs::exists(p)) continue;
    VideoWriter w(p.string() + ".tmp.mp4", {.width = kW, .height = kH, .fps = {kFps, 1}, .crf = 23, .preset = "veryfast"});
    for (int t = 0; t < seconds * kFps; ++t) {
      frame(v, t, f);
      w.write(f.data());
    }
    w.close();
    fs::rename(p.string() + ".tmp.mp4", p);
  }
  return paths;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  int videos = 4, seconds = 12, workers = 0, max_short_side = 0;
  std::string preset = "veryfast";
  std::string dir = "/tmp/foundry_curation_bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--videos") videos = std::stoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::stoi(argv[i + 1]);
    else if (a == "--workers") workers = std::stoi(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--preset") preset = argv[i + 1];
    else if (a == "--max-short-side") max_short_side = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: video_curation_bench [--videos N] [--seconds S] [--workers W] [--dir DIR]\n"
                           "                            [--preset X264_PRESET] [--max-short-side N]\n");
      return 2;
    }
  }
  set_libav_log_level(16);
  const std::vector<std::string> files = make_videos(fs::path(dir) / "inputs", videos, seconds);
  const double video_seconds = double(videos) * seconds;

  auto t0 = Clock::now();
  int64_t scdet_cuts = 0;
  for (const auto& f : files) scdet_cuts += static_cast<int64_t>(ffmpeg_scene_scores(f, {.filter = "scdet"}).cuts.size());
  const double scdet_wall = since(t0);

  t0 = Clock::now();
  int64_t content_cuts = 0;
  for (const auto& f : files) content_cuts += static_cast<int64_t>(detect_shots(f).cuts.size());
  const double detect_wall = since(t0);

  const fs::path out = fs::path(dir) / "out";
  fs::remove_all(out);
  CurateConfig config;
  config.run.workers = workers;
  config.transcode.preset = preset;
  config.transcode.max_short_side = max_short_side;
  t0 = Clock::now();
  const CurationResult r = run_curation(files, out.string(), config);
  const double pipeline_wall = since(t0);

  const double ref = video_seconds / scdet_wall;
  auto line = [&](const std::string& name, double vps, const nlohmann::json& extra) {
    nlohmann::json j = {{"stage", name}, {"video_seconds_per_second", vps}, {"ratio_vs_ffmpeg_scdet", vps / ref}};
    j.update(extra);
    std::printf("%s\n", j.dump().c_str());
  };
  std::printf("{\"videos\": %d, \"seconds_each\": %d, \"size\": \"%dx%d\", \"fps\": %d, \"hardware_threads\": %u}\n",
              videos, seconds, kW, kH, kFps, std::thread::hardware_concurrency());
  line("ffmpeg_scdet", ref, {{"cuts", scdet_cuts}, {"wall_seconds", scdet_wall}});
  line("detect_content", video_seconds / detect_wall, {{"cuts", content_cuts}, {"wall_seconds", detect_wall}});
  const auto& t = r.summary["throughput"];
  line("pipeline", video_seconds / pipeline_wall,
       {{"wall_seconds", pipeline_wall}, {"preset", preset}, {"max_short_side", max_short_side}, {"workers", t["workers"]}, {"clips", r.summary["clips"]["total"]},
        {"kept", r.summary["clips"]["kept"]}});
  for (const auto& [stage, s] : t["stages"].items())
    std::printf("{\"pipeline_stage\": \"%s\", \"thread_seconds\": %.3f, \"video_seconds_per_thread_second\": %.2f}\n",
                stage.c_str(), s["thread_seconds"].get<double>(), s["video_seconds_per_thread_second"].get<double>());
  return 0;
}
