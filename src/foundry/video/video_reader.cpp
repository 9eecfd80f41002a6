// VideoReader: libavformat demuxing + libavcodec decoding + libswscale conversion (see the header).
// The send/receive loop follows FFmpeg 5.1's doc/examples/demuxing_decoding.c; the seek follows
// the libav recipe of the Cosmos curation notes (reference/video.md b.3): seek to the keyframe at
// or before the target, flush the decoder, decode and discard up to the target.
#include "foundry/video/video_reader.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/motion_vector.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "foundry/core/check.h"
#include "foundry/video/libav_error.h"

namespace foundry::video {

namespace {

AVPixelFormat av_format(PixelFormat f) {
  switch (f) {
    case PixelFormat::bgr24: return AV_PIX_FMT_BGR24;
    case PixelFormat::rgb24: return AV_PIX_FMT_RGB24;
    case PixelFormat::gray8: return AV_PIX_FMT_GRAY8;
  }
  return AV_PIX_FMT_NONE;
}

// Matroska stores a stream's length only as a "DURATION" tag ("HH:MM:SS.nnnnnnnnn"); -1 if absent.
double duration_tag(const AVDictionary* metadata) {
  const AVDictionaryEntry* e = av_dict_get(metadata, "DURATION", nullptr, 0);
  if (e == nullptr) return -1;
  int h = 0, m = 0;
  double s = 0;
  if (std::sscanf(e->value, "%d:%d:%lf", &h, &m, &s) != 3) return -1;
  return h * 3600.0 + m * 60.0 + s;
}

}  // namespace

int channels(PixelFormat f) { return f == PixelFormat::gray8 ? 1 : 3; }

const char* name(PixelFormat f) {
  switch (f) {
    case PixelFormat::bgr24: return "bgr24";
    case PixelFormat::rgb24: return "rgb24";
    case PixelFormat::gray8: return "gray8";
  }
  return "?";
}

void set_libav_log_level(int level) { av_log_set_level(level); }

VideoReader::VideoReader(const std::string& path, const ReaderOptions& options) : path_(path), opt_(options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  FOUNDRY_CHECK(fs::exists(path, ec), "video '{}' does not exist", path);
  FOUNDRY_CHECK(!fs::is_directory(path, ec), "video '{}' is a directory", path);
  FOUNDRY_CHECK(options.out_width >= 0 && options.out_height >= 0, "video '{}': output size {}x{} must be >= 0", path,
                options.out_width, options.out_height);
  try {
    int r = avformat_open_input(&fmt_, path.c_str(), nullptr, nullptr);
    FOUNDRY_CHECK(r >= 0, "cannot open '{}' as a video: {}", path, av_error(r));
    r = avformat_find_stream_info(fmt_, nullptr);
    FOUNDRY_CHECK(r >= 0, "cannot read the streams of '{}': {}", path, av_error(r));

    const AVCodec* codec = nullptr;
    stream_ = av_find_best_stream(fmt_, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_ == AVERROR_DECODER_NOT_FOUND) {
      for (unsigned i = 0; i < fmt_->nb_streams; ++i)
        if (fmt_->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
          FOUNDRY_FAIL("'{}': unsupported video codec '{}' (no decoder in this libavcodec)", path,
                       avcodec_get_name(fmt_->streams[i]->codecpar->codec_id));
    }
    FOUNDRY_CHECK(stream_ >= 0, "'{}' ({}) has no video stream", path, fmt_->iformat->name);
    AVStream* st = fmt_->streams[stream_];
    // The tty demuxer presents text files (.txt, .nfo, ...) as ANSI-art "video"; that is not a video.
    FOUNDRY_CHECK(st->codecpar->codec_id != AV_CODEC_ID_ANSI, "'{}' is text, not a video (libavformat read it as {})",
                  path, fmt_->iformat->name);
    FOUNDRY_CHECK(st->codecpar->width > 0 && st->codecpar->height > 0, "'{}': the video stream has no picture size",
                  path);

    dec_ = avcodec_alloc_context3(codec);
    FOUNDRY_CHECK(dec_ != nullptr, "'{}': out of memory for the decoder", path);
    r = avcodec_parameters_to_context(dec_, st->codecpar);
    FOUNDRY_CHECK(r >= 0, "'{}': bad codec parameters: {}", path, av_error(r));
    dec_->pkt_timebase = st->time_base;
    dec_->thread_count = options.threads;  // 0 = auto
    dec_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    // FFmpeg 5.1's h264 decoder exports a picture's vectors from the thread that outputs it, which
    // with frame threads may run while another thread still decodes that picture: the vectors come
    // out racy (seen: 3 different flow means over 8 runs of one clip). Slices only, then.
    if (options.export_motion_vectors) dec_->thread_type = FF_THREAD_SLICE;
    AVDictionary* decoder_options = nullptr;
    if (options.export_motion_vectors) av_dict_set(&decoder_options, "flags2", "+export_mvs", 0);
    r = avcodec_open2(dec_, codec, &decoder_options);
    av_dict_free(&decoder_options);
    FOUNDRY_CHECK(r >= 0, "'{}': cannot open the {} decoder: {}", path, codec->name, av_error(r));

    frame_ = av_frame_alloc();
    pending_ = av_frame_alloc();
    rgb_ = av_frame_alloc();
    decoded_ = av_frame_alloc();
    packet_ = av_packet_alloc();
    FOUNDRY_CHECK(frame_ && pending_ && rgb_ && decoded_ && packet_, "'{}': out of memory", path);

    // ---- info -----------------------------------------------------------------------------------
    info_.path = path;
    info_.width = st->codecpar->width;
    info_.height = st->codecpar->height;
    AVRational fps = st->avg_frame_rate;
    if (fps.num <= 0 || fps.den <= 0) fps = st->r_frame_rate;
    if (fps.num <= 0 || fps.den <= 0) fps = av_guess_frame_rate(fmt_, st, nullptr);
    info_.fps = {fps.num, fps.den};
    info_.fps_value = info_.fps.value();
    info_.time_base = {st->time_base.num, st->time_base.den};
    start_pts_ = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    info_.start_time = start_pts_ * av_q2d(st->time_base);
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
      expected_end_ = st->duration * av_q2d(st->time_base);
    } else {
      expected_end_ = duration_tag(st->metadata);
    }
    if (expected_end_ > 0) {
      info_.duration = expected_end_;
    } else if (fmt_->duration != AV_NOPTS_VALUE && fmt_->duration > 0) {
      info_.duration = double(fmt_->duration) / AV_TIME_BASE;
    }
    if (st->nb_frames > 0) {
      info_.frame_count = st->nb_frames;
      info_.frame_count_exact = true;
    } else {
      info_.frame_count = std::llround(info_.duration * info_.fps_value);
    }
    info_.codec = codec->name;
    const char* pf = av_get_pix_fmt_name(dec_->pix_fmt);
    info_.pixel_format = pf ? pf : "unknown";
    info_.container = fmt_->iformat->name;

    // Analysis size: one side 0 keeps the source aspect ratio.
    out_w_ = options.out_width;
    out_h_ = options.out_height;
    if (out_w_ == 0 && out_h_ == 0) {
      out_w_ = info_.width;
      out_h_ = info_.height;
    } else if (out_w_ == 0) {
      out_w_ = std::max(1, int(std::lround(double(out_h_) * info_.width / info_.height)));
    } else if (out_h_ == 0) {
      out_h_ = std::max(1, int(std::lround(double(out_w_) * info_.height / info_.width)));
    }
    rgb_->format = av_format(options.format);
    rgb_->width = out_w_;
    rgb_->height = out_h_;
    r = options.convert ? av_frame_get_buffer(rgb_, 0) : 0;
    FOUNDRY_CHECK(r >= 0, "'{}': cannot allocate a {}x{} frame: {}", path, out_w_, out_h_, av_error(r));
    counted_ = true;
  } catch (...) {
    release();  // the destructor does not run for a constructor that throws
    throw;
  }
}

VideoReader::~VideoReader() { release(); }

void VideoReader::release() {
  av_frame_free(&frame_);
  av_frame_free(&pending_);
  av_frame_free(&rgb_);
  av_frame_free(&decoded_);
  av_packet_free(&packet_);
  sws_freeContext(sws_);
  sws_ = nullptr;
  avcodec_free_context(&dec_);
  avformat_close_input(&fmt_);
}

void VideoReader::record_error(const std::string& what) {
  ++errors_;
  if (first_error_.empty()) first_error_ = what;
  message_ = fmt::format("'{}': {} error(s) while decoding; the first: {}", path_, errors_, first_error_);
}

// At the decoder's end: a stream shorter than its container announced was cut off.
// A count is trusted when the container states it, or, estimated as duration * fps, when the
// duration is the video stream's own (not the container's, which may be an audio stream's) and the
// stream has a constant rate (avg_frame_rate == r_frame_rate): a Matroska file cut inside its
// last cluster loses a B-frame in the middle of the last GOP without any decoding error (libav
// only logs "Truncating packet"), and only the count shows it.
void VideoReader::check_truncation() {
  const AVStream* st = fmt_->streams[stream_];
  const bool constant_rate = av_cmp_q(st->avg_frame_rate, st->r_frame_rate) == 0 && st->r_frame_rate.num > 0;
  const bool trusted = info_.frame_count_exact || (constant_rate && expected_end_ > 0);
  if (counted_ && trusted && decoded_since_start_ < info_.frame_count) {
    record_error(fmt::format("the stream ends after {} of the {} frames its container {}", decoded_since_start_,
                             info_.frame_count, info_.frame_count_exact ? "announces" : "implies (duration x fps)"));
    return;
  }
  // The last frame ends one period after its timestamp; a stream missing even its last frame
  // ends a whole period early, while timestamp rounding moves the end by far less than 1/4 period.
  if (expected_end_ > 0 && info_.fps_value > 0) {
    double frame = 1.0 / info_.fps_value;
    double end = last_time_ < 0 ? 0 : last_time_ + frame;
    if (end < expected_end_ - 0.75 * frame)
      record_error(fmt::format("the stream ends at {:.3f} s, its container announces {:.3f} s", end, expected_end_));
  }
}

int VideoReader::receive(AVFrame* out) {
  int failures = 0;  // consecutive decoder failures after the flush (a broken decoder must not spin)
  while (!finished_) {
    int r = avcodec_receive_frame(dec_, out);
    if (r == 0) {
      ++decoded_since_start_;
      if (out->decode_error_flags != 0 || (out->flags & AV_FRAME_FLAG_CORRUPT))
        record_error(fmt::format("a frame at {:.3f} s decoded with concealed errors",
                                 (out->best_effort_timestamp - start_pts_) * av_q2d(fmt_->streams[stream_]->time_base)));
      return 1;
    }
    if (r == AVERROR_EOF) {
      finished_ = true;
      check_truncation();
      return 0;
    }
    if (r != AVERROR(EAGAIN)) {
      record_error(fmt::format("decoder: {}", av_error(r)));
      if (input_done_ && ++failures > 64) finished_ = true;
      continue;
    }
    if (input_done_) {  // the flushed decoder wants input: it is done
      finished_ = true;
      check_truncation();
      return 0;
    }
    r = av_read_frame(fmt_, packet_);
    if (r < 0) {
      if (r != AVERROR_EOF)
        record_error(fmt::format("demuxer at byte {}: {}", avio_tell(fmt_->pb), av_error(r)));
      avcodec_send_packet(dec_, nullptr);  // flush: the decoder returns its delayed frames, then EOF
      input_done_ = true;
      continue;
    }
    if (packet_->stream_index != stream_) {
      av_packet_unref(packet_);
      continue;
    }
    if (packet_->flags & AV_PKT_FLAG_CORRUPT)
      record_error(fmt::format("a packet at byte {} is cut short", packet_->pos));
    r = avcodec_send_packet(dec_, packet_);
    if (r < 0 && r != AVERROR(EAGAIN))
      record_error(fmt::format("decoder, packet at byte {}: {}", packet_->pos, av_error(r)));
    av_packet_unref(packet_);
  }
  return 0;
}

void VideoReader::convert(const AVFrame* in, Frame& out) {
  int flags = opt_.sws_flags;
  if (flags == 0)
    flags = (out_w_ == in->width && out_h_ == in->height) ? (SWS_POINT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT)
                                                           : SWS_BILINEAR;
  sws_ = sws_getCachedContext(sws_, in->width, in->height, AVPixelFormat(in->format), out_w_, out_h_,
                              AVPixelFormat(rgb_->format), flags, nullptr, nullptr, nullptr);
  FOUNDRY_CHECK(sws_ != nullptr, "'{}': swscale cannot convert {} {}x{} to {} {}x{}", path_,
                av_get_pix_fmt_name(AVPixelFormat(in->format)), in->width, in->height, name(opt_.format), out_w_,
                out_h_);
  // swscale writes into the aligned rgb_ frame (its SIMD paths may touch whole vectors past a row),
  // then the rows are packed without padding.
  sws_scale(sws_, in->data, in->linesize, 0, in->height, rgb_->data, rgb_->linesize);
  const int c = channels(opt_.format);
  const size_t row = size_t(out_w_) * c;
  out.width = out_w_;
  out.height = out_h_;
  out.channels = c;
  out.data.resize(row * out_h_);
  for (int y = 0; y < out_h_; ++y) std::memcpy(out.data.data() + y * row, rgb_->data[0] + y * rgb_->linesize[0], row);
}

void VideoReader::copy_side_data(const AVFrame* in, Frame& out) const {
  out.picture_type = av_get_picture_type_char(in->pict_type);
  out.motion_vectors.clear();
  if (!opt_.export_motion_vectors) return;
  const AVFrameSideData* sd = av_frame_get_side_data(in, AV_FRAME_DATA_MOTION_VECTORS);
  if (sd == nullptr) return;
  const auto* mvs = reinterpret_cast<const AVMotionVector*>(sd->data);
  const size_t n = sd->size / sizeof(AVMotionVector);
  out.motion_vectors.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const AVMotionVector& m = mvs[i];
    out.motion_vectors[i] = {m.source, m.w, m.h, m.src_x, m.src_y, m.dst_x, m.dst_y,
                             m.flags, m.motion_x, m.motion_y, m.motion_scale};
  }
}
const AVFrame* VideoReader::decoded() const { return decoded_->buf[0] != nullptr ? decoded_ : nullptr; }

bool VideoReader::next(Frame& frame) {
  av_frame_unref(decoded_);
  AVFrame* src = nullptr;
  if (has_pending_) {
    src = pending_;
    has_pending_ = false;
  } else {
    if (!receive(frame_)) return false;
    src = frame_;
  }
  const AVRational tb = fmt_->streams[stream_]->time_base;
  int64_t pts = src->best_effort_timestamp;
  if (pts == AV_NOPTS_VALUE) pts = src->pts;
  if (pts == AV_NOPTS_VALUE) {  // no timestamp at all: one frame period after the previous one
    const double t = last_time_ < 0 ? 0.0 : last_time_ + 1.0 / info_.fps_value;
    pts = start_pts_ + std::llround(t / av_q2d(tb));
  }
  if (opt_.convert) {
    convert(src, frame);
  } else {
    frame.data.clear();
    frame.width = src->width;
    frame.height = src->height;
    frame.channels = 0;
  }
  copy_side_data(src, frame);
  frame.pts = pts;
  frame.time = (pts - start_pts_) * av_q2d(tb);
  frame.index = next_index_++;
  last_time_ = frame.time;
  ++returned_;
  av_frame_move_ref(decoded_, src);  // kept for decoded() until the next call
  return true;
}

bool VideoReader::seek(double seconds) {
  FOUNDRY_CHECK(std::isfinite(seconds), "'{}': cannot seek to {} s", path_, seconds);
  const AVRational tb = fmt_->streams[stream_]->time_base;
  const int64_t target = start_pts_ + std::llround(std::max(seconds, 0.0) / av_q2d(tb));
  // The keyframe at or before target; if the index has none, the keyframe nearest the start.
  int r = avformat_seek_file(fmt_, stream_, INT64_MIN, target, target, 0);
  if (r < 0) r = avformat_seek_file(fmt_, stream_, INT64_MIN, start_pts_, INT64_MAX, 0);
  FOUNDRY_CHECK(r >= 0, "'{}': cannot seek to {} s: {}", path_, seconds, av_error(r));
  avcodec_flush_buffers(dec_);
  av_frame_unref(decoded_);
  av_frame_unref(pending_);
  has_pending_ = false;
  input_done_ = false;
  finished_ = false;
  counted_ = false;  // frame indices are now derived from timestamps
  last_time_ = -1;
  while (receive(pending_)) {
    int64_t pts = pending_->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) pts = pending_->pts;
    if (pts == AV_NOPTS_VALUE || pts >= target) {
      has_pending_ = true;
      const double t = pts == AV_NOPTS_VALUE ? seconds : (pts - start_pts_) * av_q2d(tb);
      next_index_ = std::llround(t * info_.fps_value);
      return true;
    }
    last_time_ = (pts - start_pts_) * av_q2d(tb);
    av_frame_unref(pending_);
  }
  return false;
}

}  // namespace foundry::video
