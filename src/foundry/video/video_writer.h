// VideoWriter: encodes packed BGR24 / RGB24 frames to a video file with FFmpeg's libav*
// (FFmpeg 5.1's doc/examples/encode_video.c + mux.c): swscale to yuv420p, the first encoder of a
// fallback list that this libavcodec has and the container accepts, pts = frame number in the
// time base 1/fps, packets rescaled to the muxer's time base, flush and trailer on close().
// Used to write synthetic test videos and, later, to transcode clips (reference/video.md b.3:
// libopenh264 or libx264 at 4 Mb/s in mp4).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "foundry/video/video_reader.h"

struct AVFormatContext;
struct AVCodecContext;
struct AVFrame;
struct AVPacket;
struct AVStream;
struct SwsContext;

namespace foundry::video {

struct WriterOptions {
  int width = 0, height = 0;   // even: yuv420p halves the chroma planes
  Rational fps{25, 1};
  PixelFormat input = PixelFormat::bgr24;  // bgr24 or rgb24
  // Encoders tried in order; the first one present that the container accepts and that opens wins.
  std::vector<std::string> codecs = {"libx264", "libopenh264", "mpeg4"};
  int64_t bit_rate = 0;  // bits/s; 0 = quality mode below
  int crf = -1;          // libx264/libx265 constant rate factor (0 = lossless in YUV); -1 = the encoder's default
  int qscale = -1;       // mpeg4 and other q-scale encoders: 1 (best) .. 31; -1 = the encoder's default
  std::string preset;    // libx264 preset ("ultrafast" .. "veryslow"); "" = the encoder's default
  int gop = 0;           // keyframe interval in frames; 0 = the encoder's default
  int threads = 0;       // 0 = auto
  std::string container;  // muxer name ("mp4", "matroska", ...); "" = from the path's extension
  bool faststart = false;  // mp4/mov: move the index (moov) to the front on close (streamable; a second pass)
  // BGR/RGB -> yuv420p with SWS_ACCURATE_RND (exact rounding; the tests' lossless round trips rely
  // on it); false takes swscale's faster path (about 10% of a 720p veryfast transcode), as ffmpeg does.
  // Seen with FFmpeg 5.1: the accurate path's output depends on uninitialised memory inside
  // swscale (the same frames encode differently under MALLOC_PERTURB_ or with other threads
  // allocating), the fast path does not; the clip transcoder therefore uses the fast path.
  bool accurate_conversion = true;
};

class VideoWriter {
 public:
  // Creates path (the container comes from its extension: .mp4, .mkv, .avi, .mov, ...) and opens
  // the encoder; throws foundry::Error naming the path on any failure.
  VideoWriter(const std::string& path, const WriterOptions& options);
  ~VideoWriter();  // closes if close() was not called (errors are then swallowed: call close())
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  // One frame: height rows of width * 3 bytes in the input format, rows stride bytes apart
  // (0 = packed). Its pts is the number of frames written before it.
  void write(const uint8_t* pixels, int64_t stride = 0);
  void write(const Frame& frame);
  // Drains the encoder, writes the trailer and closes the file. Idempotent.
  void close();

  const std::string& codec() const { return codec_; }  // the encoder used, e.g. "libx264"
  int64_t frames_written() const { return frames_; }

 private:
  void release();
  void drain(bool flush);

  std::string path_;
  WriterOptions opt_;
  std::string codec_;
  AVFormatContext* fmt_ = nullptr;
  AVCodecContext* enc_ = nullptr;
  AVStream* stream_ = nullptr;
  SwsContext* sws_ = nullptr;
  AVFrame* rgb_ = nullptr;  // the caller's frame, aligned and padded
  AVFrame* yuv_ = nullptr;
  AVPacket* packet_ = nullptr;
  bool closed_ = false;
  int64_t frames_ = 0;
};

// The encoders of `names` that this libavcodec has (e.g. Debian 12: libx264, mpeg4; no libopenh264).
std::vector<std::string> available_encoders(const std::vector<std::string>& names);

}  // namespace foundry::video
