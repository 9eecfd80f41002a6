// foundry curate: the video curation pipeline (video/curation_pipeline.h).
//   foundry curate INPUT... -o OUT_DIR [--config curate.yaml] [--set section.key=value]...
//                  [--workers N] [--print-config]
// INPUTs are video files or directories (searched recursively). Prints one line per finished
// video and the summary report; OUT_DIR holds the clips, clips.jsonl, the WebDataset shards and
// summary.json. Corrupt or unreadable inputs are reported and skipped; a re-run resumes.
//   foundry curate --detect-only VIDEO... [--detector content|adaptive|scdet|select] [--threshold T]
//                  [--min-scene-len N] [--luma-only] [--downscale K] [-o FILE.json]
// prints each video's shots as JSON (video/shot_detection.h; like `scenedetect list-scenes`): one
// indented object for one video, one line per video for several. A file that cannot be opened is
// reported (its record holds "error") and the others go on; a damaged file's record says how many
// decoding errors it had and lists the shots of what decoded.
#include <fstream>

#include "foundry/cli/commands.h"
#include "foundry/core/check.h"
#include "foundry/video/curation_pipeline.h"
#include "foundry/video/shot_detection.h"

namespace foundry::cli {

namespace {

struct CurateOptions {
  std::vector<std::string> inputs;
  std::string output;
  std::string config;
  std::vector<std::string> overrides;
  bool detect_only = false;
  bool print_config = false;
  // Shorthands for detect.* and run.workers.
  std::string detector;
  double threshold = -1;
  int64_t min_scene_len = -1;
  bool luma_only = false;
  int downscale = -1;
  int workers = -1;
};

video::CurateConfig resolve_config(const CurateOptions& o) {
  std::vector<std::string> overrides;
  if (!o.detector.empty()) overrides.push_back("detect.detector=" + o.detector);
  if (o.threshold >= 0) overrides.push_back(fmt::format("detect.threshold={}", o.threshold));
  if (o.min_scene_len >= 0) overrides.push_back(fmt::format("detect.min_scene_len={}", o.min_scene_len));
  if (o.luma_only) overrides.push_back("detect.luma_only=true");
  if (o.downscale >= 0) overrides.push_back(fmt::format("detect.downscale={}", o.downscale));
  if (o.workers >= 0) overrides.push_back(fmt::format("run.workers={}", o.workers));
  overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
  return o.config.empty() ? video::CurateConfig::parse("", "<defaults>", overrides)
                          : video::CurateConfig::load(o.config, overrides);
}

void detect_only(const CurateOptions& o, const video::CurateConfig& config) {
  const video::ShotDetectionOptions opt = video::shot_detection_options(config);
  std::vector<nlohmann::json> records;
  bool failed = false;
  for (const std::string& path : o.inputs) {
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
  if (o.output.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    std::ofstream f(o.output, std::ios::binary);
    FOUNDRY_CHECK(f.good(), "curate: cannot write '{}'", o.output);
    f << text;
    FOUNDRY_CHECK(f.good(), "curate: writing '{}' failed", o.output);
  }
  FOUNDRY_CHECK(!failed, "curate: some inputs could not be read (see above)");
}

}  // namespace

void add_curate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "curate", "Video curation: shots -> clips (H.264 MP4) -> filters -> dedup -> WebDataset shards");
  auto o = std::make_shared<CurateOptions>();
  cmd->add_option("inputs", o->inputs, "Video files or directories")->required();
  cmd->add_option("-o,--output", o->output,
                  "The output directory (with --detect-only: the JSON file to write, default stdout)");
  cmd->add_option("-c,--config", o->config, "curate.yaml: sections detect, split, transcode, filter, dedup, shard, run");
  cmd->add_option("--set", o->overrides, "Override a config key: section.key=value (repeatable)");
  cmd->add_option("--workers", o->workers, "Parallel tasks (run.workers; 0: the number of cores)");
  cmd->add_flag("--print-config", o->print_config, "Print the resolved configuration as YAML and exit");
  cmd->add_flag("--detect-only", o->detect_only, "Only detect shots and print them as JSON");
  cmd->add_option("--detector", o->detector,
                  "detect.detector: content, adaptive (PySceneDetect) or scdet, select (FFmpeg's scene filters)");
  cmd->add_option("--threshold", o->threshold,
                  "detect.threshold: content 27, adaptive 3 (adaptive_threshold), scdet 10, select 0.4 by default");
  cmd->add_option("--min-scene-len", o->min_scene_len, "detect.min_scene_len in frames (default 15)");
  cmd->add_flag("--luma-only", o->luma_only, "detect.luma_only: score the luma (V) channel only");
  cmd->add_option("--downscale", o->downscale, "detect.downscale: 0 auto (~256 px), 1 none, K: W/K x H/K");
  cmd->callback([o] {
    video::set_libav_log_level(16);  // AV_LOG_ERROR: damage is reported in the records, not as log noise
    const video::CurateConfig config = resolve_config(*o);
    if (o->print_config) {
      std::fputs(config.to_yaml().c_str(), stdout);
      return;
    }
    if (o->detect_only) return detect_only(*o, config);
    FOUNDRY_CHECK(!o->output.empty(), "curate: give the output directory with -o OUT_DIR");
    const std::vector<std::string> videos = video::expand_video_inputs(o->inputs);
    FOUNDRY_CHECK(!videos.empty(), "curate: no video files under the inputs given");
    const video::CurationResult r = video::run_curation(videos, o->output, config, [](const std::string& line) {
      std::fprintf(stderr, "foundry curate: %s\n", line.c_str());
    });
    std::fputs(video::summary_report(r.summary).c_str(), stdout);
  });
}

}  // namespace foundry::cli
