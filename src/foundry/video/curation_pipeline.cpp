// The curation pipeline's orchestration (see the header): a worker pool over video and clip
// tasks, per-video records for resumption, then decisions, JSONL, shards and the summary.
#include "foundry/video/curation_pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "foundry/checkpoint/durable_io.h"
#include "foundry/core/check.h"
#include "foundry/core/crc32c.h"
#include "foundry/video/clip_decisions.h"
#include "foundry/video/clip_splitter.h"
#include "foundry/video/clip_transcoder.h"
#include "foundry/video/frame_statistics.h"
#include "foundry/video/motion_filter.h"
#include "foundry/video/perceptual_hash.h"
#include "foundry/video/shot_detection.h"
#include "foundry/video/webdataset.h"

namespace foundry::video {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Thread-seconds spent in each stage, and the source seconds each stage got through.
struct StageTimes {
  std::mutex m;
  std::map<std::string, double> seconds;
  void add(const std::string& stage, double s) {
    std::lock_guard<std::mutex> lock(m);
    seconds[stage] += s;
  }
};

// Two queues served by `workers` threads; clip tasks go first. run() returns when both are empty
// and no task is running (tasks may push more tasks).
class WorkQueue {
 public:
  void push_video(std::function<void()> task) { push(videos_, std::move(task)); }
  void push_clip(std::function<void()> task) { push(clips_, std::move(task)); }
  void run(int workers) {
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) threads.emplace_back([this] { work(); });
    for (auto& t : threads) t.join();
  }

 private:
  void push(std::deque<std::function<void()>>& q, std::function<void()> task) {
    std::lock_guard<std::mutex> lock(m_);
    q.push_back(std::move(task));
    cv_.notify_one();
  }
  void work() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return !clips_.empty() || !videos_.empty() || busy_ == 0; });
      if (clips_.empty() && videos_.empty()) {
        cv_.notify_all();
        return;
      }
      auto& q = clips_.empty() ? videos_ : clips_;
      std::function<void()> task = std::move(q.front());
      q.pop_front();
      ++busy_;
      lock.unlock();
      task();  // tasks catch their own errors
      lock.lock();
      --busy_;
      cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> clips_, videos_;
  int busy_ = 0;
};

struct VideoJob {
  std::string path, id;
  json record;                      // videos/<id>.json
  SplitResult split;
  double fps = 0;
  std::vector<json> clips;          // one per split clip, filled by clip tasks
  std::atomic<int64_t> clips_left{0};
  bool resumed = false;
  bool failed = false;
  std::string error;
  double source_seconds = 0;        // the source's duration (what throughput counts)
};

}  // namespace

ShotDetectionOptions shot_detection_options(const CurateConfig& c) {
  ShotDetectionOptions o;
  o.detector = c.detect.detector;
  o.downscale = c.detect.downscale;
  o.threads = 1;  // the pool runs one task per core
  o.content.min_scene_len = o.adaptive.min_scene_len = c.detect.min_scene_len;
  o.content.luma_only = o.adaptive.luma_only = c.detect.luma_only;
  o.ffmpeg.filter = c.detect.detector == "select" ? "select" : "scdet";
  o.ffmpeg.min_scene_len = c.detect.min_scene_len;
  o.ffmpeg.threads = 1;
  if (c.detect.threshold >= 0) {
    o.content.threshold = c.detect.threshold;
    o.adaptive.adaptive_threshold = c.detect.threshold;
    o.ffmpeg.threshold = c.detect.threshold;
  }
  return o;
}

namespace {

TranscodeOptions transcode_options(const CurateConfig& c) {
  TranscodeOptions o;
  o.width = c.transcode.width;
  o.height = c.transcode.height;
  o.max_short_side = c.transcode.max_short_side;
  if (c.transcode.fps > 0) o.fps = frame_rate_from(c.transcode.fps);
  o.bit_rate = c.transcode.bit_rate;
  o.codecs = c.transcode.codecs;
  o.preset = c.transcode.preset;
  o.threads = 1;
  return o;
}

std::string hex64(uint64_t h) { return fmt::format("{:016x}", h); }

json static_blank_json(const StaticBlankScores& s) {
  return {{"frames", s.frames}, {"mean_luma", s.mean_luma}, {"mean_luma_std", s.mean_luma_std},
          {"blank_fraction", s.blank_fraction}, {"mean_frame_difference", s.mean_frame_difference},
          {"max_frame_difference", s.max_frame_difference}};
}

json motion_json(const MotionScores& m) {
  return {{"global_mean", m.global_mean}, {"per_patch_min_256", m.per_patch_min_256},
          {"frames_sampled", m.frames_sampled}, {"method", m.method}};
}

json info_json(const VideoInfo& i) {
  return {{"width", i.width}, {"height", i.height}, {"fps", i.fps_value}, {"fps_rational", fmt::format("{}/{}", i.fps.num, i.fps.den)},
          {"duration", i.duration}, {"frames", i.frame_count}, {"codec", i.codec}, {"pixel_format", i.pixel_format},
          {"container", i.container}};
}

// A source's identity for resumption: size and modification time.
json source_stamp(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  return {{"size", ec ? -1 : static_cast<int64_t>(size)}, {"mtime", static_cast<int64_t>(mtime)}};
}

class Pipeline {
 public:
  Pipeline(const std::string& out_dir, const CurateConfig& config, const std::function<void(const std::string&)>& log)
      : out_(out_dir), cfg_(config), log_(log), key_(config.processing_key()) {}

  CurationResult run(const std::vector<std::string>& videos) {
    const auto t0 = Clock::now();
    fs::create_directories(out_ / "videos");
    fs::create_directories(out_ / "clips");
    jobs_.reserve(videos.size());
    for (const std::string& v : videos) {
      auto job = std::make_unique<VideoJob>();
      job->path = v;
      job->id = source_video_id(v);
      jobs_.push_back(std::move(job));
    }
    for (auto& job : jobs_) queue_.push_video([this, j = job.get()] { detect(*j); });
    const int workers = cfg_.run.workers > 0 ? cfg_.run.workers
                                             : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    queue_.run(workers);
    const double pipeline_wall = seconds_since(t0);
    return finish(pipeline_wall, workers, t0);
  }

 private:
  void say(const std::string& line) {
    if (!log_) return;
    std::lock_guard<std::mutex> lock(log_m_);
    log_(line);
  }

  void fail(VideoJob& job, const std::string& error) {
    job.failed = true;
    job.error = error;
    say(fmt::format("{}: skipped: {}", job.path, error));
  }

  bool resume(VideoJob& job) {
    const fs::path rec = out_ / "videos" / (job.id + ".json");
    if (!fs::exists(rec)) return false;
    try {
      json r = json::parse(read_small_file(rec.string()));
      if (r.value("status", "") != "done" || r.value("processing_key", "") != key_ || r["stamp"] != source_stamp(job.path))
        return false;
      for (const auto& c : r["clips"])  // every clip file still there
        if (!c.contains("error") && !fs::exists(out_ / c["path"].get<std::string>()) && cfg_.run.keep_dropped_clips)
          return false;
      job.record = std::move(r);
      job.resumed = true;
      job.source_seconds = job.record["info"].value("duration", 0.0);
      say(fmt::format("{}: done in an earlier run ({} clips)", job.path, job.record["clips"].size()));
      return true;
    } catch (const std::exception&) {
      return false;  // unreadable record: process again
    }
  }

  void detect(VideoJob& job) {
    const auto t0 = Clock::now();
    try {
      if (resume(job)) return;
      fs::remove_all(out_ / "clips" / job.id);  // an unfinished earlier attempt, partial files included
      fs::create_directories(out_ / "clips" / job.id);
      const ShotList shots = detect_shots(job.path, shot_detection_options(cfg_));
      job.source_seconds = shots.info.duration;
      if (shots.decode_errors > 0) return fail(job, "damaged: " + shots.error_message);
      if (shots.frames == 0) return fail(job, "no frame decoded");
      job.fps = shots.info.fps_value;
      FOUNDRY_CHECK(job.fps > 0, "'{}': no frame rate", job.path);
      job.split = split_clips(shots.scenes, job.fps,
                              {.min_length_s = cfg_.split.min_length_s, .min_length_frames = cfg_.split.min_length_frames,
                               .max_length_s = cfg_.split.max_length_s, .max_length_mode = cfg_.split.max_length_mode,
                               .crop_s = cfg_.split.crop_s});
      json shot_list = json::array(), dropped = json::array();
      for (const Scene& s : shots.scenes) shot_list.push_back({s.start, s.end});
      for (const DroppedRange& d : job.split.dropped)
        dropped.push_back({{"shot", d.shot}, {"start_frame", d.start_frame}, {"end_frame", d.end_frame},
                           {"seconds", (d.end_frame - d.start_frame) / job.fps}, {"reason", d.reason}});
      job.record = {{"source", job.path}, {"video", job.id}, {"stamp", source_stamp(job.path)},
                    {"processing_key", key_}, {"info", info_json(shots.info)}, {"frames_decoded", shots.frames},
                    {"analysis_size", {shots.analysis_width, shots.analysis_height}},
                    {"detector", cfg_.detect.detector}, {"shots", shot_list},
                    {"split", {{"min_length", job.split.min_length}, {"max_length", job.split.max_length},
                               {"crop_length", job.split.crop_length}, {"dropped", dropped}}},
                    {"detect_seconds", seconds_since(t0)}};
      job.clips.assign(job.split.clips.size(), json());
      job.clips_left = static_cast<int64_t>(job.split.clips.size());
      times_.add("detect", seconds_since(t0));
      if (job.split.clips.empty()) return finalize(job);
      for (size_t k = 0; k < job.split.clips.size(); ++k) queue_.push_clip([this, &job, k] { clip(job, k); });
    } catch (const Error& e) {
      times_.add("detect", seconds_since(t0));
      fail(job, e.message());
    } catch (const std::exception& e) {
      times_.add("detect", seconds_since(t0));
      fail(job, e.what());
    }
  }

  void clip(VideoJob& job, size_t k) {
    const ClipRange& r = job.split.clips[k];
    const std::string id = fmt::format("{}_{}-{}", job.id, r.start_frame, r.end_frame);
    const std::string rel = fmt::format("clips/{}/{}.mp4", job.id, id);
    const json& info = job.record.at("info");  // read-only while the video's clip tasks run
    json c = {{"clip", id}, {"video", job.id}, {"source", job.path}, {"shot", r.shot},
              {"start_frame", r.start_frame}, {"end_frame", r.end_frame},
              {"start_time", r.start_frame / job.fps}, {"end_time", r.end_frame / job.fps},
              {"source_fps", job.fps}, {"source_width", info["width"]}, {"source_height", info["height"]},
              {"path", rel}};
    try {
      auto t0 = Clock::now();
      const TranscodeOptions topt = transcode_options(cfg_);
      const double out_fps = topt.fps.num > 0 ? topt.fps.value() : job.fps;
      const auto expected = static_cast<int64_t>(std::llround((r.end_frame - r.start_frame) / job.fps * out_fps));
      FrameStatistics stats({.blank_luma_std = cfg_.filter.blank_luma_std, .blank_fraction = cfg_.filter.blank_fraction,
                             .static_difference = cfg_.filter.static_difference});
      ClipFingerprinter fingerprint(std::max<int64_t>(expected, 1), cfg_.dedup.samples);
      const ClipSpan span{r.start_frame, r.end_frame, r.start_frame / job.fps, r.end_frame / job.fps};
      const TranscodeResult t = transcode_clips(job.path, {span}, {(out_ / rel).string()}, topt,
                                                [&](size_t, const Frame& f) {
                                                  stats.add(f);
                                                  fingerprint.add(f);
                                                })[0];
      times_.add("transcode", seconds_since(t0));
      c.update({{"codec", t.codec}, {"width", t.width}, {"height", t.height}, {"fps", t.fps.value()},
                {"frames", t.frames}, {"duration", t.duration}, {"bytes", t.bytes}});
      if (t.decode_errors > 0) c["decode_errors"] = t.decode_errors;
      if (!t.error.empty() || t.frames == 0) {
        c["error"] = t.error.empty() ? std::string("no frame written") : t.error;
      } else {
        c["scores"]["static_blank"] = static_blank_json(stats.result());
        json hashes = json::array();
        for (uint64_t h : fingerprint.result().hashes) hashes.push_back(hex64(h));
        c["fingerprint"] = hashes;
        t0 = Clock::now();
        c["scores"]["motion"] = motion_json(motion_scores((out_ / rel).string(), {.threads = 1}));
        times_.add("motion", seconds_since(t0));
      }
    } catch (const Error& e) {
      c["error"] = e.message();
    } catch (const std::exception& e) {
      c["error"] = e.what();
    }
    job.clips[k] = std::move(c);
    if (--job.clips_left == 0) finalize(job);
  }

  void finalize(VideoJob& job) {
    const auto t0 = Clock::now();
    try {
      job.record["clips"] = job.clips;
      job.record["status"] = "done";
      write_file_atomic((out_ / "videos" / (job.id + ".json")).string(), job.record.dump(1));
      say(fmt::format("{}: {} shots, {} clips", job.path, job.record["shots"].size(), job.clips.size()));
    } catch (const std::exception& e) {
      fail(job, std::string("cannot write its record: ") + e.what());
    }
    times_.add("finalize", seconds_since(t0));
  }

  CurationResult finish(double pipeline_wall, int workers, Clock::time_point t0) {
    // decide: filters on recorded scores, then dedup across every clip of this run.
    auto td = Clock::now();
    std::vector<json> clips;
    for (auto& job : jobs_)
      if (!job->failed && job->record.contains("clips"))
        for (const auto& c : job->record["clips"]) clips.push_back(c);
    decide_clips(clips, cfg_);
    times_.add("decide", seconds_since(td));

    td = Clock::now();
    std::string jsonl;
    for (const json& c : clips) jsonl += c.dump() + "\n";
    write_file_atomic((out_ / "clips.jsonl").string(), jsonl);
    if (!cfg_.run.keep_dropped_clips)
      for (const json& c : clips)
        if (!c["kept"].get<bool>()) fs::remove(out_ / c["path"].get<std::string>());
    json shards = write_shards(clips);
    times_.add("shard", seconds_since(td));

    CurationResult result;
    result.summary = summary(clips, shards, pipeline_wall, seconds_since(t0), workers);
    write_file_atomic((out_ / "summary.json").string(), result.summary.dump(2) + "\n");
    result.clips = std::move(clips);
    return result;
  }

  // Rebuilt from the kept clips on every run, in a temporary folder renamed over the old one.
  json write_shards(const std::vector<json>& clips) {
    if (!cfg_.shard.enabled) return nullptr;
    const fs::path tmp = out_ / fmt::format("shards.tmp-{}", ::getpid()), final_dir = out_ / "shards";
    fs::remove_all(tmp);
    ShardWriter writer(tmp.string(), cfg_.shard.samples_per_shard);
    int64_t samples = 0;
    for (const json& c : clips) {
      if (!c["kept"].get<bool>()) continue;
      const std::string bucket = shard_bucket(c["width"].get<int>(), c["height"].get<int>(),
                                              c["frames"].get<int64_t>(), cfg_.shard.frame_window);
      writer.add(bucket, c["clip"].get<std::string>(), read_small_file((out_ / c["path"].get<std::string>()).string(),
                                                                       int64_t{4} << 30),
                 c.dump());
      ++samples;
    }
    writer.close();
    fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
    json list = json::array();
    for (const std::string& s : writer.shards()) list.push_back(fs::relative(s, tmp).string());
    return {{"samples", samples}, {"tars", list.size()}, {"files", list}};
  }

  json summary(const std::vector<json>& clips, const json& shards, double pipeline_wall, double total_wall, int workers) {
    double seconds_in = 0, seconds_processed = 0, seconds_out = 0, seconds_clips = 0, split_dropped_seconds = 0;
    int64_t processed = 0, resumed = 0;
    json failures = json::array();
    for (const auto& job : jobs_) {
      if (job->failed) {
        failures.push_back({{"video", job->path}, {"error", job->error}});
        continue;
      }
      seconds_in += job->source_seconds;
      (job->resumed ? resumed : processed) += 1;
      if (!job->resumed) seconds_processed += job->source_seconds;
      for (const auto& d : job->record["split"]["dropped"]) split_dropped_seconds += d.value("seconds", 0.0);
    }
    json reasons = json::object();
    int64_t kept = 0;
    for (const json& c : clips) {
      seconds_clips += c.value("duration", 0.0);
      if (c["kept"].get<bool>()) {
        ++kept;
        seconds_out += c.value("duration", 0.0);
        continue;
      }
      // A clip counts once, under its first reason.
      const std::string key = reason_key(c["drop_reasons"][0].get<std::string>());
      json& r = reasons[key];
      if (r.is_null()) r = {{"clips", 0}, {"seconds", 0.0}};
      r["clips"] = r.value("clips", 0) + 1;
      r["seconds"] = r.value("seconds", 0.0) + c.value("duration", 0.0);
    }
    json stages = json::object();
    {
      std::lock_guard<std::mutex> lock(times_.m);
      for (const auto& [stage, s] : times_.seconds)
        stages[stage] = {{"thread_seconds", s},
                         {"video_seconds_per_thread_second", s > 0 ? seconds_processed / s : 0.0}};
    }
    return {{"output_dir", out_.string()},
            {"videos", {{"inputs", jobs_.size()}, {"processed", processed}, {"resumed", resumed},
                        {"failed", failures.size()}, {"failures", failures}}},
            {"hours_in", seconds_in / 3600}, {"hours_out", seconds_out / 3600},
            {"seconds_in", seconds_in}, {"seconds_in_clips", seconds_clips}, {"seconds_out", seconds_out},
            {"seconds_dropped_by_split", split_dropped_seconds},
            {"clips", {{"total", clips.size()}, {"kept", kept}, {"dropped", clips.size() - kept}, {"reasons", reasons}}},
            {"shards", shards},
            {"throughput", {{"workers", workers}, {"video_seconds_processed", seconds_processed},
                            {"wall_seconds", total_wall}, {"pipeline_wall_seconds", pipeline_wall},
                            {"video_seconds_per_wall_second", total_wall > 0 ? seconds_processed / total_wall : 0.0},
                            {"stages", stages}}},
            {"config", cfg_.to_yaml()}};
  }

  fs::path out_;
  const CurateConfig& cfg_;
  std::function<void(const std::string&)> log_;
  std::mutex log_m_;
  std::string key_;
  std::vector<std::unique_ptr<VideoJob>> jobs_;
  WorkQueue queue_;
  StageTimes times_;
};

}  // namespace

std::vector<std::string> expand_video_inputs(const std::vector<std::string>& inputs) {
  static const std::vector<std::string> extensions = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts",
                                                      ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".mxf", ".y4m"};
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    FOUNDRY_CHECK(fs::exists(in), "curate: input '{}' does not exist", in);
    if (!fs::is_directory(in)) {
      out.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(in)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
      if (e.is_regular_file() && std::find(extensions.begin(), extensions.end(), ext) != extensions.end())
        found.push_back(e.path().string());
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

std::string source_video_id(const std::string& path) {
  std::string stem = fs::path(path).stem().string();
  for (char& ch : stem)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
  if (stem.size() > 48) stem.resize(48);
  return fmt::format("{}_{:08x}", stem, crc32c(fs::absolute(path).lexically_normal().string()));
}

CurationResult run_curation(const std::vector<std::string>& videos, const std::string& out_dir,
                            const CurateConfig& config, const std::function<void(const std::string&)>& log) {
  config.validate();
  FOUNDRY_CHECK(!out_dir.empty(), "curate: the output directory (-o) must be given");
  Pipeline p(out_dir, config, log);
  return p.run(videos);
}

std::string summary_report(const json& s) {
  std::string out;
  const json& v = s["videos"];
  out += fmt::format("videos: {} in, {} processed, {} already done, {} failed\n", v["inputs"].get<int64_t>(),
                     v["processed"].get<int64_t>(), v["resumed"].get<int64_t>(), v["failed"].get<int64_t>());
  for (const auto& f : v["failures"])
    out += fmt::format("  failed: {}: {}\n", f["video"].get<std::string>(), f["error"].get<std::string>());
  const json& c = s["clips"];
  out += fmt::format("hours: {:.4f} in, {:.4f} out ({:.1f} s of {:.1f} s kept; {:.1f} s dropped by the split rules)\n",
                     s["hours_in"].get<double>(), s["hours_out"].get<double>(), s["seconds_out"].get<double>(),
                     s["seconds_in"].get<double>(), s["seconds_dropped_by_split"].get<double>());
  out += fmt::format("clips: {} written, {} kept, {} dropped\n", c["total"].get<int64_t>(), c["kept"].get<int64_t>(),
                     c["dropped"].get<int64_t>());
  for (const auto& [reason, r] : c["reasons"].items())
    out += fmt::format("  dropped {}: {} clips, {:.1f} s\n", reason, r["clips"].get<int64_t>(), r["seconds"].get<double>());
  if (!s["shards"].is_null())
    out += fmt::format("shards: {} samples in {} tar files\n", s["shards"]["samples"].get<int64_t>(),
                       s["shards"]["tars"].get<int64_t>());
  const json& t = s["throughput"];
  out += fmt::format("throughput: {:.1f} video-seconds per wall-second ({:.1f} s of video in {:.2f} s, {} workers)\n",
                     t["video_seconds_per_wall_second"].get<double>(), t["video_seconds_processed"].get<double>(),
                     t["wall_seconds"].get<double>(), t["workers"].get<int64_t>());
  for (const auto& [stage, st] : t["stages"].items())
    out += fmt::format("  {:<10} {:8.2f} thread-s  {:8.1f} video-s per thread-s\n", stage,
                       st["thread_seconds"].get<double>(), st["video_seconds_per_thread_second"].get<double>());
  return out;
}

}  // namespace foundry::video
