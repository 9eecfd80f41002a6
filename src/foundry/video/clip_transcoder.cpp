// Clip transcoding in one decoding pass (see the header for the rules: span membership,
// nearest-frame rate conversion, size, atomic outputs).
#include "foundry/video/clip_transcoder.h"

extern "C" {
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>

#include "foundry/core/check.h"
#include "foundry/video/video_writer.h"

namespace foundry::video {

namespace {

namespace fs = std::filesystem;

// The nearest even integer >= 2 (halves round up, like ffmpeg's scale=-2).
int even_near(double x) { return std::max(2, 2 * int(std::floor(x / 2 + 0.5))); }

// round(x) with halves up, robust to the last-bit noise of x = seconds * fps.
int64_t round_half_up(double x) { return int64_t(std::floor(x + 0.5 + 1e-9)); }

// One clip being written: the nearest-frame state of the rate conversion and its encoder.
struct OpenClip {
  size_t index = 0;          // into spans / out_paths / results
  double start = 0, end = 0;  // seconds from the source's start
  int64_t slots = 0;         // N output frames
  int64_t next = 0;          // the next output frame number k
  bool has_prev = false;     // prev holds the latest span frame decoded (time prev_time)
  Frame prev;
  double prev_time = 0;
  std::string partial;
  std::unique_ptr<VideoWriter> writer;
  int64_t errors = 0;
};

}  // namespace

void transcode_size(int src_w, int src_h, const TranscodeOptions& options, int& width, int& height) {
  FOUNDRY_CHECK(src_w > 0 && src_h > 0, "transcode: source size {}x{} is not positive", src_w, src_h);
  FOUNDRY_CHECK(options.width >= 0 && options.height >= 0, "transcode: target size {}x{} is negative",
                options.width, options.height);
  FOUNDRY_CHECK(options.max_short_side == 0 || options.max_short_side >= 2,
                "transcode: max_short_side {} must be 0 (off) or >= 2", options.max_short_side);
  double w = src_w, h = src_h;
  if (options.width > 0 && options.height > 0) {
    w = options.width;
    h = options.height;
  } else if (options.width > 0) {
    w = options.width;
    h = w * src_h / src_w;
  } else if (options.height > 0) {
    h = options.height;
    w = h * src_w / src_h;
  }
  const int cap = options.max_short_side;
  if (cap > 0 && std::min(w, h) > cap) {
    const double s = cap / std::min(w, h);  // downscale only
    w *= s;
    h *= s;
  }
  width = even_near(w);
  height = even_near(h);
  if (cap > 0 && std::min(width, height) > cap) (width <= height ? width : height) -= 2;  // odd cap: round down
}

Rational frame_rate_from(double fps) {
  FOUNDRY_CHECK(fps > 0 && fps <= 1000, "frame rate {} must be in (0, 1000]", fps);
  const double whole = std::round(fps), ntsc = std::round(fps * 1.001);
  if (std::abs(fps - whole) < 1e-9) return {static_cast<int>(whole), 1};
  if (std::abs(fps * 1.001 - ntsc) < 5e-3) return {static_cast<int>(ntsc) * 1000, 1001};
  const int num = static_cast<int>(std::lround(fps * 1000)), g = std::gcd(num, 1000);
  return {num / g, 1000 / g};
}

std::vector<TranscodeResult> transcode_clips(const std::string& source, const std::vector<ClipSpan>& spans,
                                             const std::vector<std::string>& out_paths,
                                             const TranscodeOptions& options,
                                             const std::function<void(size_t clip, const Frame& frame)>& on_frame) {
  FOUNDRY_CHECK(spans.size() == out_paths.size(), "transcode '{}': {} spans but {} output paths", source,
                spans.size(), out_paths.size());
  const size_t n = spans.size();
  std::vector<TranscodeResult> results(n);
  if (n == 0) return results;

  // ---- source, target size and rates -------------------------------------------------------------
  VideoInfo info;
  {
    ReaderOptions probe;
    probe.threads = 1;
    info = VideoReader(source, probe).info();  // throws naming the path
  }
  FOUNDRY_CHECK(info.fps.num > 0 && info.fps.den > 0, "transcode '{}': the source has no frame rate ({}/{})",
                source, info.fps.num, info.fps.den);
  const double fps_src = info.fps.value();
  const Rational fps_out_q = options.fps.num > 0 ? options.fps : info.fps;
  FOUNDRY_CHECK(fps_out_q.num > 0 && fps_out_q.den > 0, "transcode '{}': target fps {}/{} must be positive", source,
                fps_out_q.num, fps_out_q.den);
  const double fps_out = fps_out_q.value();
  int width = 0, height = 0;
  transcode_size(info.width, info.height, options, width, height);

  ReaderOptions ro;
  ro.out_width = width;
  ro.out_height = height;
  ro.format = PixelFormat::bgr24;
  ro.threads = options.threads;
  // A resize: the area filter. The source size: swscale's fast unscaled yuv2rgb path (SWS_BICUBIC, what
  // the ffmpeg CLI uses), about 3x faster than the exactly rounded conversion the reader uses by
  // default and within a few LSB of it.
  ro.sws_flags = width != info.width || height != info.height ? SWS_AREA | SWS_ACCURATE_RND : SWS_BICUBIC;
  VideoReader reader(source, ro);

  WriterOptions wo;
  wo.width = width;
  wo.height = height;
  wo.fps = fps_out_q;
  wo.input = PixelFormat::bgr24;
  wo.codecs = options.codecs;
  wo.bit_rate = options.bit_rate;
  wo.preset = options.preset;
  wo.threads = options.threads;
  wo.container = "mp4";  // the outputs are named NAME.mp4.partial while written
  wo.faststart = true;
  wo.accurate_conversion = false;  // as the ffmpeg CLI; ~10% faster, and reproducible (video_writer.h)

  // ---- the clips, in order of start --------------------------------------------------------------
  const double half = 0.5 / fps_src;  // span membership tolerance: half a source frame
  std::vector<OpenClip> clips(n);
  for (size_t i = 0; i < n; ++i) {
    const ClipSpan& s = spans[i];
    OpenClip& c = clips[i];
    c.index = i;
    if (s.end_time > s.start_time) {
      c.start = s.start_time;
      c.end = s.end_time;
    } else {
      c.start = double(s.start_frame) / fps_src;
      c.end = double(s.end_frame) / fps_src;
    }
    c.slots = c.end > c.start ? round_half_up((c.end - c.start) * fps_out) : 0;
    c.partial = out_paths[i] + ".partial";
    TranscodeResult& r = results[i];
    r.width = width;
    r.height = height;
    r.fps = fps_out_q;
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return clips[a].start < clips[b].start; });

  // Output frame k of clip c: the held frame, stamped with k.
  const auto emit = [&](OpenClip& c) {
    Frame& f = c.prev;
    f.index = c.next;
    f.pts = c.next;
    f.time = double(c.next) / fps_out;
    if (!c.writer) c.writer = std::make_unique<VideoWriter>(c.partial, wo);
    c.writer->write(f);
    ++c.next;
    if (on_frame) on_frame(c.index, f);
  };
  // A decoded frame of the span: emit every pending slot whose nearest frame is the held one
  // (t_k <= midpoint of the held and the new frame; a tie keeps the earlier frame), then hold it.
  const auto feed = [&](OpenClip& c, const Frame& frame) {
    if (c.has_prev) {
      const double mid = 0.5 * (c.prev_time + frame.time);
      while (c.next < c.slots && c.start + double(c.next) / fps_out <= mid + 1e-6) emit(c);
    }
    c.prev.data = frame.data;  // reuses the held buffer
    c.prev.width = frame.width;
    c.prev.height = frame.height;
    c.prev.channels = frame.channels;
    c.prev_time = frame.time;
    c.has_prev = true;
  };
  // The span is over (a frame at or past its end, or the end of the source): fill the remaining
  // slots with the held frame, close, rename.
  const auto finish = [&](OpenClip& c, bool source_ended, double source_end) {
    TranscodeResult& r = results[c.index];
    r.decode_errors = c.errors;
    if (c.slots == 0) {
      r.error = fmt::format("empty span [{:.3f}, {:.3f}) s: no output frame at {} fps", c.start, c.end, fps_out);
      return;
    }
    int64_t slots = c.slots;
    if (source_ended && c.has_prev) {
      const int64_t covered = round_half_up((c.prev_time + 1.0 / fps_src - c.start) * fps_out);
      slots = std::max<int64_t>(1, std::min(slots, std::max(c.next, covered)));
    }
    if (c.has_prev)
      while (c.next < slots) emit(c);
    std::vector<std::string> why;
    if (c.errors > 0) why.push_back(reader.error_message());
    if (!c.has_prev) {
      why.insert(why.begin(),
                 source_ended ? fmt::format("no frame decoded in [{:.3f}, {:.3f}) s: the source ends at {:.3f} s",
                                            c.start, c.end, source_end)
                              : fmt::format("no frame decoded in [{:.3f}, {:.3f}) s", c.start, c.end));
    } else if (slots < c.slots) {
      why.insert(why.begin(), fmt::format("the source ends at {:.3f} s, inside [{:.3f}, {:.3f}) s: {} of {} frames",
                                          source_end, c.start, c.end, slots, c.slots));
    }
    for (size_t k = 0; k < why.size(); ++k) r.error += (k ? "; " : "") + why[k];
    if (!c.writer) return;  // dropped: no frame, no file
    c.writer->close();
    r.codec = c.writer->codec();
    r.frames = c.writer->frames_written();
    c.writer.reset();
    std::error_code ec;
    fs::rename(c.partial, out_paths[c.index], ec);
    FOUNDRY_CHECK(!ec, "transcode: cannot rename '{}' to '{}': {}", c.partial, out_paths[c.index], ec.message());
    r.path = out_paths[c.index];
    r.duration = double(r.frames) / fps_out;
    r.bytes = int64_t(fs::file_size(r.path));
  };

  // ---- one pass ----------------------------------------------------------------------------------
  std::vector<OpenClip*> open;  // clips whose span the decoder is inside, in order of start
  size_t next_clip = 0;         // order[next_clip] is the next clip to open
  int64_t errors_seen = 0;
  // Decoder errors since the last call go to the open clips, else to the clip being decoded towards.
  const auto attribute_errors = [&]() {
    const int64_t d = reader.errors() - errors_seen;
    errors_seen = reader.errors();
    if (d <= 0) return;
    if (!open.empty())
      for (OpenClip* c : open) c->errors += d;
    else if (next_clip < n)
      clips[order[next_clip]].errors += d;
  };
  try {
    Frame frame;
    double decoder_time = -std::numeric_limits<double>::infinity();  // time of the last frame decoded
    double last_time = 0;
    bool ended = false;
    while (open.size() > 0 || next_clip < n) {
      if (open.empty()) {
        const double target = std::max(0.0, clips[order[next_clip]].start - half);
        const bool first = decoder_time == -std::numeric_limits<double>::infinity();
        if ((first && target > 0) || (!first && target > decoder_time + options.seek_ahead)) {
          const bool found = reader.seek(target);
          attribute_errors();
          if (!found) {
            ended = true;
            break;
          }
        }
      }
      const bool got = reader.next(frame);
      attribute_errors();
      if (!got) {
        ended = true;
        break;
      }
      const double t = frame.time;
      decoder_time = last_time = t;
      while (next_clip < n && t >= clips[order[next_clip]].start - half) open.push_back(&clips[order[next_clip++]]);
      for (size_t k = 0; k < open.size();) {
        if (t >= open[k]->end - half) {
          finish(*open[k], false, 0);
          open.erase(open.begin() + ptrdiff_t(k));
        } else {
          feed(*open[k++], frame);
        }
      }
    }
    if (ended) {
      const bool none = decoder_time == -std::numeric_limits<double>::infinity();
      const double source_end = none ? info.duration : last_time + 1.0 / fps_src;
      for (OpenClip* c : open) finish(*c, true, source_end);
      open.clear();
      for (; next_clip < n; ++next_clip) finish(clips[order[next_clip]], true, source_end);
    }
  } catch (...) {
    for (OpenClip& c : clips) {
      if (!c.writer) continue;
      c.writer.reset();  // closes (errors swallowed)
      std::error_code ec;
      fs::remove(c.partial, ec);
    }
    throw;
  }
  return results;
}

}  // namespace foundry::video
