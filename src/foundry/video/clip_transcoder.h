// Clip transcoding (reference/video.md b.3): cut spans out of one source video and encode each
// as H.264 in MP4 at 4 Mb/s, in ONE decoding pass over the source.
//
// cosmos-curate runs `ffmpeg -ss start -to end -i src -c:v libopenh264 -b:v 4M` per clip; the
// libav equivalent (b.3) is: seek to the keyframe before the first span's start, decode forward,
// hand every decoded frame to the spans that contain it, encode, mux mp4.
//
// Span membership. A source frame with time s (seconds from the stream's start) belongs to a span
// [start, end) when start - h <= s < end - h, h = half a source frame period: i.e. the frames whose
// nearest frame number round(s * fps_src) lies in [start_frame, end_frame) when the times are
// frame-aligned; tolerant of timestamps quantised by the container (mkv: 1 ms).
//
// Frame-rate conversion (drop / duplicate, nearest neighbour in time): output frame k has time
// t_k = start + k / fps_out and shows the span's source frame nearest t_k (an exact tie: the
// earlier frame). The clip has N = round((end - start) * fps_out) frames (half up), fewer when
// the source ends inside the span (then N = round((last + 1/fps_src - start) * fps_out)).
// ffmpeg's `fps` filter (round=near) differs in its rule: it rounds each source frame's time to
// the nearest output slot and slot k shows the LAST source frame rounded at or before k. The two
// agree for 25 -> 12.5 and 25 -> 30 (the tests' cases); elsewhere ffmpeg can show a neighbouring
// frame (24 -> 30, slot 2: ffmpeg frame 1, here frame 2; 30 -> 10, slot 0: ffmpeg frame 1,
// here frame 0).
//
// Size: TranscodeOptions::width/height (0,0 = the source's; one 0 keeps the aspect ratio), then
// max_short_side (downscale so min(W,H) <= it, never upscale), each side rounded to the nearest
// even number (yuv420p; the capped short side rounds down so it stays <= max_short_side).
// Resampling: SWS_AREA | SWS_ACCURATE_RND when the size changes (an area average over each output
// pixel's footprint when downscaling, bilinear when upscaling); at the source size no
// resampling (VideoReader's exact path).
//
// Output: the first encoder of TranscodeOptions::codecs that this libavcodec has (libx264 on
// Debian 12; libopenh264 is not built there), yuv420p, bit_rate b/s (ABR), `preset` for x264,
// mp4 with the index in front (+faststart, so shards stream). Each clip is written to
// out_path + ".partial" and renamed to out_path once complete: a file under the final name is
// always a whole clip. A clip's encoder is opened at its first output frame, so a clip with no
// frame leaves no file at all.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "foundry/video/video_reader.h"

namespace foundry::video {

// A span of the source, [start, end). The times are used when end_time > start_time; otherwise
// they are start_frame / fps_src and end_frame / fps_src.
struct ClipSpan {
  int64_t start_frame = 0, end_frame = 0;
  double start_time = 0, end_time = 0;
};

struct TranscodeOptions {
  int width = 0, height = 0;        // target size; 0,0 = the source's; one 0 keeps the aspect ratio; rounded to even
  int max_short_side = 0;           // alternatively: downscale so min(W,H) <= this (never upscale); 0 = off
  Rational fps{0, 1};               // target frame rate; {0,1} = the source's
  int64_t bit_rate = 4'000'000;     // b.3: 4 Mb/s H.264
  std::vector<std::string> codecs = {"libx264", "libopenh264"};
  std::string preset = "veryfast";
  int threads = 1;                  // encoder and decoder threads per clip (the pipeline runs clips in parallel)
  double seek_ahead = 5.0;          // seconds: seek (instead of decoding through) when the next span starts this far
                                    // ahead of the decoder and no clip is open
};

struct TranscodeResult {
  std::string path;     // out_paths[i] when the clip was written; "" when it was dropped
  std::string codec;    // the encoder used, e.g. "libx264"
  int width = 0, height = 0;
  Rational fps;
  int64_t frames = 0;   // output frames written
  double duration = 0;  // frames / fps
  int64_t bytes = 0;    // size of the mp4
  int64_t decode_errors = 0;  // decoder errors while this clip was open (or while decoding towards it)
  std::string error;          // "" when the clip is whole; else why it is short or was dropped
};

// A frame rate given as a number (a config's transcode.fps) as the exact rational an encoder
// wants: integers as N/1, the NTSC family written with 2-3 decimals (23.976, 29.97, 59.94) as
// N*1000/1001, anything else to the nearest 1/1000 (reduced).
Rational frame_rate_from(double fps);

// The output size for a source of src_w x src_h under `options` (the rules in the header).
void transcode_size(int src_w, int src_h, const TranscodeOptions& options, int& width, int& height);

// One decoding pass over `source` for all spans (processed in order of start; seeks to the first
// span's start and to any span that starts more than options.seek_ahead seconds ahead of the
// decoder while no clip is open; decodes through gaps otherwise; overlapping spans are allowed).
// Clip i is written to out_paths[i] (via out_paths[i] + ".partial"); results[i] describes it.
// on_frame(i, frame) is called with every output frame of clip i, in order, right after it is
// encoded: BGR24 at the target size, frame.index = k (output frame number), frame.time = k / fps
// (seconds from the clip's start), frame.pts = k.
// Throws foundry::Error naming the path when the source cannot be opened or an output cannot be
// created / written (the .partial files of open clips are removed first). Decode damage is not an
// exception: it is counted in the results, the clip keeps the frames that decoded, and a clip
// with no decoded frame (e.g. a span beyond the end) is dropped: no file, error says why.
std::vector<TranscodeResult> transcode_clips(const std::string& source, const std::vector<ClipSpan>& spans,
                                             const std::vector<std::string>& out_paths,
                                             const TranscodeOptions& options,
                                             const std::function<void(size_t clip, const Frame& frame)>& on_frame = {});

}  // namespace foundry::video
