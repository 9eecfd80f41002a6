// FFmpeg scene scores through libavfilter (see the header). The graph is built with the decoder's
// first frame (its size, pixel format and sample aspect ratio) and the stream's time base, as
// FFmpeg 5.1's doc/examples/filtering_video.c does; frames are pushed by reference
// (AV_BUFFERSRC_FLAG_KEEP_REF: the reader keeps its frame) and every output frame is pulled.
#include "foundry/video/ffmpeg_scene_detector.h"

extern "C" {
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
}

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstring>

#include "foundry/core/check.h"
#include "foundry/video/libav_error.h"

namespace foundry::video {

namespace {

// buffer -> scdet | select -> buffersink, owned by one AVFilterGraph.
struct SceneGraph {
  AVFilterGraph* graph = nullptr;
  AVFilterContext* source = nullptr;
  AVFilterContext* sink = nullptr;
  AVFrame* out = av_frame_alloc();

  SceneGraph() = default;
  SceneGraph(const SceneGraph&) = delete;
  SceneGraph& operator=(const SceneGraph&) = delete;
  ~SceneGraph() {
    av_frame_free(&out);
    avfilter_graph_free(&graph);
  }

  AVFilterContext* add(const std::string& path, const char* filter, const std::string& args) {
    AVFilterContext* ctx = nullptr;
    const int r =
        avfilter_graph_create_filter(&ctx, avfilter_get_by_name(filter), filter, args.c_str(), nullptr, graph);
    FOUNDRY_CHECK(r >= 0, "'{}': cannot create the filter {}={}: {}", path, filter, args, av_error(r));
    return ctx;
  }

  void build(const std::string& path, const AVFrame* first, Rational time_base, const std::string& filter,
             const std::string& filter_args) {
    graph = avfilter_graph_alloc();
    FOUNDRY_CHECK(graph != nullptr && out != nullptr, "'{}': out of memory for the filter graph", path);
    graph->nb_threads = 1;  // scdet / select are single-threaded
    const char* format = av_get_pix_fmt_name(AVPixelFormat(first->format));
    FOUNDRY_CHECK(format != nullptr, "'{}': the decoder's frames have no pixel format", path);
    const AVRational sar = first->sample_aspect_ratio.num > 0 ? first->sample_aspect_ratio : AVRational{1, 1};
    source = add(path, "buffer",
                 fmt::format("video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}", first->width,
                             first->height, format, time_base.num, time_base.den, sar.num, sar.den));
    AVFilterContext* scene = add(path, filter.c_str(), filter_args);
    sink = add(path, "buffersink", "");
    int r = avfilter_link(source, 0, scene, 0);
    if (r >= 0) r = avfilter_link(scene, 0, sink, 0);
    if (r >= 0) r = avfilter_graph_config(graph, nullptr);
    FOUNDRY_CHECK(r >= 0, "'{}': cannot configure buffer -> {}={} -> buffersink for {} {}x{}: {}", path, filter,
                  filter_args, format, first->width, first->height, av_error(r));
  }
};

// A metadata value as the filter printed it ("%0.3f" / "%f"); a missing key or another format is an error.
double metadata_value(const std::string& path, const AVFrame* frame, const char* key, int64_t index) {
  const AVDictionaryEntry* e = av_dict_get(frame->metadata, key, nullptr, 0);
  FOUNDRY_CHECK(e != nullptr, "'{}': frame {} carries no {} metadata", path, index, key);
  double v = 0;
  const char* end = e->value + std::strlen(e->value);
  const auto [ptr, ec] = std::from_chars(e->value, end, v);
  FOUNDRY_CHECK(ec == std::errc() && ptr == end, "'{}': frame {}: {}='{}' is not a number", path, index, key, e->value);
  return v;
}

}  // namespace

double ffmpeg_scene_threshold(const FfmpegSceneOptions& o) {
  FOUNDRY_CHECK(o.filter == "scdet" || o.filter == "select",
                "ffmpeg scene detection: filter must be scdet or select, got '{}'", o.filter);
  const bool scdet = o.filter == "scdet";
  if (o.threshold == -1) return scdet ? 10.0 : 0.4;
  const double max = scdet ? 100.0 : 1.0;
  FOUNDRY_CHECK(o.threshold >= 0 && o.threshold <= max,
                "ffmpeg scene detection: {} threshold must be in [0, {}], got {}", o.filter, max, o.threshold);
  return o.threshold;
}

FfmpegSceneScores ffmpeg_scene_scores(const std::string& path, const FfmpegSceneOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  double threshold = 0;
  try {
    threshold = ffmpeg_scene_threshold(o);
  } catch (const Error& e) {
    FOUNDRY_FAIL("'{}': {}", path, e.message());
  }
  FOUNDRY_CHECK(o.min_scene_len >= 0, "'{}': min_scene_len must be >= 0, got {}", path, o.min_scene_len);
  const bool scdet = o.filter == "scdet";
  // select passes every frame (scene >= 0 always) and tags it with lavfi.scene_score.
  const std::string filter_args = scdet ? fmt::format("threshold={}", threshold) : "expr=gte(scene,0)";

  VideoReader reader(path, {.threads = o.threads, .convert = false});
  FfmpegSceneScores out;
  out.info = reader.info();
  out.threshold = threshold;
  std::vector<int64_t> candidates;  // frames the filter marks as cuts, before min_scene_len
  SceneGraph g;
  // Reads every frame the sink has; returns libav's code (EAGAIN: needs input, EOF: done).
  const auto pull = [&] {
    int r = 0;
    while ((r = av_buffersink_get_frame(g.sink, g.out)) >= 0) {
      const int64_t t = static_cast<int64_t>(out.score.size());
      if (scdet) {
        out.mafd.push_back(metadata_value(path, g.out, "lavfi.scd.mafd", t));
        out.score.push_back(metadata_value(path, g.out, "lavfi.scd.score", t));
        if (av_dict_get(g.out->metadata, "lavfi.scd.time", nullptr, 0) != nullptr) candidates.push_back(t);
      } else {
        out.score.push_back(metadata_value(path, g.out, "lavfi.scene_score", t));
        if (out.score.back() > threshold) candidates.push_back(t);
      }
      av_frame_unref(g.out);
    }
    return r;
  };

  Frame frame;  // no pixels (convert = false): the picture is reader.decoded()
  while (reader.next(frame)) {
    const AVFrame* decoded = reader.decoded();
    if (g.graph == nullptr) g.build(path, decoded, out.info.time_base, o.filter, filter_args);
    const int r = av_buffersrc_add_frame_flags(g.source, const_cast<AVFrame*>(decoded), AV_BUFFERSRC_FLAG_KEEP_REF);
    FOUNDRY_CHECK(r >= 0, "'{}': {} rejected frame {}: {}", path, o.filter, out.frames, av_error(r));
    ++out.frames;
    const int p = pull();
    FOUNDRY_CHECK(p == AVERROR(EAGAIN), "'{}': {} failed at frame {}: {}", path, o.filter, out.frames, av_error(p));
  }
  if (g.graph != nullptr) {
    int r = av_buffersrc_add_frame_flags(g.source, nullptr, 0);  // end of stream
    FOUNDRY_CHECK(r >= 0, "'{}': cannot flush {}: {}", path, o.filter, av_error(r));
    r = pull();
    FOUNDRY_CHECK(r == AVERROR_EOF, "'{}': {} failed at the end: {}", path, o.filter, av_error(r));
  }
  FOUNDRY_CHECK(static_cast<int64_t>(out.score.size()) == out.frames,
                "'{}': {} returned {} frames for the {} decoded", path, o.filter, out.score.size(), out.frames);

  // Frame 0 starts the first scene; a cut closer than min_scene_len to the last kept one (or to 0) is dropped.
  int64_t last = 0;
  for (const int64_t c : candidates)
    if (c > 0 && c - last >= o.min_scene_len) {
      out.cuts.push_back(c);
      last = c;
    }
  out.decode_errors = reader.errors();
  out.error_message = reader.error_message();
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace foundry::video
