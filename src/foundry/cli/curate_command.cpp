// foundry curate: the video curation pipeline (video/). So far its first stage:
//   foundry curate --detect-only VIDEO... [--detector content|adaptive|scdet|select] [--threshold T]
//                  [--min-scene-len N] [--luma-only] [--downscale K] [-o FILE.json]
// prints each video's shots as JSON (video/shot_detection.h; like `scenedetect list-scenes`):
// one indented object for one video, one line per video for several. A file that cannot be
// opened is reported (its record holds "error") and the others go on; a damaged file's record
// says how many decoding errors it had and lists the shots of what decoded.
#include <fstream>

#include "foundry/cli/commands.h"
#include "foundry/core/check.h"
#include "foundry/video/shot_detection.h"

namespace foundry::cli {

void add_curate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("curate", "Video curation; so far --detect-only: shot detection as JSON");
  struct Options {
    std::vector<std::string> inputs;
    std::string output;
    bool detect_only = false;
    std::string detector = "content";
    double threshold = -1;  // -1: the detector's default (content 27, adaptive 3)
    int64_t min_scene_len = 15;
    bool luma_only = false;
    int downscale = 0;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("inputs", o->inputs, "Video files")->required();
  cmd->add_option("-o,--output", o->output, "With --detect-only: the JSON file to write (default: stdout)");
  cmd->add_flag("--detect-only", o->detect_only, "Only detect shots and print them as JSON");
  cmd->add_option("--detector", o->detector,
                  "content (PySceneDetect ContentDetector), adaptive (AdaptiveDetector), scdet or select (FFmpeg's "
                  "scene score through libavfilter)");
  cmd->add_option("--threshold", o->threshold,
                  "content: score threshold (default 27); adaptive: adaptive_threshold (default 3); scdet: score in "
                  "percent (default 10); select: scene 0..1 (default 0.4)");
  cmd->add_option("--min-scene-len", o->min_scene_len, "Minimum scene length in frames (default 15)");
  cmd->add_flag("--luma-only", o->luma_only, "Score on the luma (V) channel only");
  cmd->add_option("--downscale", o->downscale, "Analysis downscale: 0 auto (~256 px), 1 none, K: W/K x H/K");
  cmd->callback([o] {
    video::set_libav_log_level(16);  // AV_LOG_ERROR: damage is reported in the records, not as log noise
    FOUNDRY_CHECK(o->detect_only,
                  "curate: only --detect-only is built so far (the clip pipeline: splitting, transcoding, filters, "
                  "dedup and shards comes next); run foundry curate --detect-only VIDEO...");
    video::ShotDetectionOptions opt;
    opt.detector = o->detector;
    opt.downscale = o->downscale;
    opt.content.min_scene_len = opt.adaptive.min_scene_len = opt.ffmpeg.min_scene_len = o->min_scene_len;
    opt.content.luma_only = opt.adaptive.luma_only = o->luma_only;
    if (o->threshold >= 0) {
      opt.content.threshold = o->threshold;
      opt.adaptive.adaptive_threshold = o->threshold;
      opt.ffmpeg.threshold = o->threshold;
    }
    std::vector<nlohmann::json> records;
    bool failed = false;
    for (const std::string& path : o->inputs) {
      try {
        records.push_back(video::shots_json(video::detect_shots(path, opt), opt));
        if (records.back().contains("error"))
          std::fprintf(stderr, "foundry curate: %s\n", records.back()["error"].get<std::string>().c_str());
      } catch (const Error& e) {
        std::fprintf(stderr, "foundry curate: %s: skipped: %s\n", path.c_str(), e.message().c_str());
        records.push_back({{"video", path}, {"error", e.message()}});
        failed = true;
      }
    }
    std::string text;
    if (records.size() == 1) text = records[0].dump(2) + "\n";
    else
      for (const auto& r : records) text += r.dump() + "\n";
    if (o->output.empty()) {
      std::fputs(text.c_str(), stdout);
    } else {
      std::ofstream f(o->output, std::ios::binary);
      FOUNDRY_CHECK(f.good(), "curate: cannot write '{}'", o->output);
      f << text;
      FOUNDRY_CHECK(f.good(), "curate: writing '{}' failed", o->output);
    }
    FOUNDRY_CHECK(!failed, "curate: some inputs could not be read (see above)");
  });
}

}  // namespace foundry::cli
