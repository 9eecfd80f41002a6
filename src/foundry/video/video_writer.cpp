// VideoWriter: swscale (packed RGB -> yuv420p) + libavcodec encoding + libavformat muxing, after
// FFmpeg 5.1's doc/examples/mux.c (see the header).
#include "foundry/video/video_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

#include "foundry/core/check.h"
#include "foundry/video/libav_error.h"

namespace foundry::video {

namespace {

bool has_pix_fmt(const AVCodec* c, AVPixelFormat f) {
  if (c->pix_fmts == nullptr) return true;  // the encoder does not say: let avcodec_open2 decide
  for (const AVPixelFormat* p = c->pix_fmts; *p != AV_PIX_FMT_NONE; ++p)
    if (*p == f) return true;
  return false;
}

}  // namespace

std::vector<std::string> available_encoders(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& n : names)
    if (avcodec_find_encoder_by_name(n.c_str()) != nullptr) out.push_back(n);
  return out;
}

VideoWriter::VideoWriter(const std::string& path, const WriterOptions& options) : path_(path), opt_(options) {
  const int w = options.width, h = options.height;
  FOUNDRY_CHECK(w > 0 && h > 0 && w % 2 == 0 && h % 2 == 0,
                "video '{}': frame size {}x{} must be positive and even (yuv420p)", path, w, h);
  FOUNDRY_CHECK(options.fps.num > 0 && options.fps.den > 0, "video '{}': fps {}/{} must be positive", path,
                options.fps.num, options.fps.den);
  FOUNDRY_CHECK(options.input == PixelFormat::bgr24 || options.input == PixelFormat::rgb24,
                "video '{}': input format {} is not bgr24 or rgb24", path, name(options.input));
  try {
    const char* container = options.container.empty() ? nullptr : options.container.c_str();
    int r = avformat_alloc_output_context2(&fmt_, nullptr, container, path.c_str());
    FOUNDRY_CHECK(r >= 0 && fmt_ != nullptr, "cannot tell the container of '{}' from {}: {}", path,
                  container ? fmt::format("the name '{}'", container) : std::string("its extension"), av_error(r));

    // ---- the first encoder that exists, suits the container and opens ----------------------------
    const AVRational fps{options.fps.num, options.fps.den};
    std::vector<std::string> tried;
    for (const std::string& n : options.codecs) {
      const AVCodec* c = avcodec_find_encoder_by_name(n.c_str());
      if (c == nullptr) {
        tried.push_back(n + ": not in this libavcodec");
        continue;
      }
      if (avformat_query_codec(fmt_->oformat, c->id, FF_COMPLIANCE_NORMAL) == 0) {
        tried.push_back(fmt::format("{}: {} does not hold {}", n, fmt_->oformat->name, avcodec_get_name(c->id)));
        continue;
      }
      if (!has_pix_fmt(c, AV_PIX_FMT_YUV420P)) {
        tried.push_back(n + ": no yuv420p");
        continue;
      }
      AVCodecContext* e = avcodec_alloc_context3(c);
      FOUNDRY_CHECK(e != nullptr, "'{}': out of memory for the encoder", path);
      e->width = w;
      e->height = h;
      e->pix_fmt = AV_PIX_FMT_YUV420P;
      e->time_base = av_inv_q(fps);
      e->framerate = fps;
      e->thread_count = options.threads;
      if (options.gop > 0) e->gop_size = options.gop;
      if (options.bit_rate > 0) e->bit_rate = options.bit_rate;
      if (options.qscale >= 0) {
        e->flags |= AV_CODEC_FLAG_QSCALE;
        e->global_quality = FF_QP2LAMBDA * options.qscale;
      }
      if (fmt_->oformat->flags & AVFMT_GLOBALHEADER) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
      AVDictionary* opts = nullptr;
      if (options.crf >= 0) av_dict_set_int(&opts, "crf", options.crf, 0);
      if (!options.preset.empty()) av_dict_set(&opts, "preset", options.preset.c_str(), 0);
      r = avcodec_open2(e, c, &opts);
      av_dict_free(&opts);
      if (r < 0) {
        tried.push_back(fmt::format("{}: {}", n, av_error(r)));
        avcodec_free_context(&e);
        continue;
      }
      enc_ = e;
      codec_ = n;
      break;
    }
    FOUNDRY_CHECK(enc_ != nullptr, "video '{}': no usable encoder ({})", path, fmt::join(tried, "; "));

    stream_ = avformat_new_stream(fmt_, nullptr);
    FOUNDRY_CHECK(stream_ != nullptr, "'{}': out of memory for the stream", path);
    stream_->time_base = enc_->time_base;  // a request: avformat_write_header may change it (mp4: 1/12800)
    stream_->avg_frame_rate = fps;
    stream_->r_frame_rate = fps;
    r = avcodec_parameters_from_context(stream_->codecpar, enc_);
    FOUNDRY_CHECK(r >= 0, "'{}': {}", path, av_error(r));
    if (!(fmt_->oformat->flags & AVFMT_NOFILE)) {
      r = avio_open(&fmt_->pb, path.c_str(), AVIO_FLAG_WRITE);
      FOUNDRY_CHECK(r >= 0, "cannot create video '{}': {}", path, av_error(r));
    }
    AVDictionary* muxer_opts = nullptr;
    if (options.faststart) av_dict_set(&muxer_opts, "movflags", "+faststart", 0);
    r = avformat_write_header(fmt_, &muxer_opts);
    av_dict_free(&muxer_opts);
    FOUNDRY_CHECK(r >= 0, "video '{}': cannot write the {} header: {}", path, fmt_->oformat->name, av_error(r));

    // Input frames are copied into an aligned, padded AVFrame first: swscale's SIMD may read
    // whole vectors past the end of a packed caller buffer.
    const AVPixelFormat in = options.input == PixelFormat::bgr24 ? AV_PIX_FMT_BGR24 : AV_PIX_FMT_RGB24;
    rgb_ = av_frame_alloc();
    yuv_ = av_frame_alloc();
    packet_ = av_packet_alloc();
    FOUNDRY_CHECK(rgb_ && yuv_ && packet_, "'{}': out of memory", path);
    rgb_->format = in;
    rgb_->width = w;
    rgb_->height = h;
    yuv_->format = AV_PIX_FMT_YUV420P;
    yuv_->width = w;
    yuv_->height = h;
    FOUNDRY_CHECK(av_frame_get_buffer(rgb_, 0) >= 0 && av_frame_get_buffer(yuv_, 0) >= 0, "'{}': out of memory",
                  path);
    // RGB -> YUV (BT.601, limited range), chroma averaged over each 2x2 block; exactly rounded
    // unless options.accurate_conversion is off.
    const int flags = SWS_BILINEAR | (options.accurate_conversion ? SWS_ACCURATE_RND : 0);
    sws_ = sws_getContext(w, h, in, w, h, AV_PIX_FMT_YUV420P, flags, nullptr, nullptr, nullptr);
    FOUNDRY_CHECK(sws_ != nullptr, "'{}': swscale cannot convert {} to yuv420p", path, name(options.input));
  } catch (...) {
    release();
    throw;
  }
}

VideoWriter::~VideoWriter() {
  if (!closed_) {
    try {
      close();
    } catch (const Error&) {
      // a destructor must not throw; close() explicitly to see the error
    }
  }
  release();
}

void VideoWriter::release() {
  sws_freeContext(sws_);
  sws_ = nullptr;
  av_frame_free(&rgb_);
  av_frame_free(&yuv_);
  av_packet_free(&packet_);
  avcodec_free_context(&enc_);
  if (fmt_ != nullptr) {
    if (!(fmt_->oformat->flags & AVFMT_NOFILE)) avio_closep(&fmt_->pb);
    avformat_free_context(fmt_);
    fmt_ = nullptr;
  }
}

void VideoWriter::write(const uint8_t* pixels, int64_t stride) {
  FOUNDRY_CHECK(!closed_ && enc_ != nullptr, "video '{}': write after close", path_);
  const int64_t row = int64_t(opt_.width) * 3;
  if (stride == 0) stride = row;
  FOUNDRY_CHECK(stride >= row, "video '{}': stride {} < row bytes {}", path_, stride, row);
  int r = av_frame_make_writable(rgb_);
  if (r >= 0) r = av_frame_make_writable(yuv_);
  FOUNDRY_CHECK(r >= 0, "video '{}': {}", path_, av_error(r));
  for (int y = 0; y < opt_.height; ++y) std::memcpy(rgb_->data[0] + y * rgb_->linesize[0], pixels + y * stride, row);
  sws_scale(sws_, rgb_->data, rgb_->linesize, 0, opt_.height, yuv_->data, yuv_->linesize);
  yuv_->pts = frames_++;  // time_base = 1/fps
  r = avcodec_send_frame(enc_, yuv_);
  FOUNDRY_CHECK(r >= 0, "video '{}': encoding frame {} with {}: {}", path_, frames_ - 1, codec_, av_error(r));
  drain(false);
}

void VideoWriter::write(const Frame& frame) {
  FOUNDRY_CHECK(frame.width == opt_.width && frame.height == opt_.height && frame.channels == 3,
                "video '{}': frame {}x{}x{} does not match the writer's {}x{}x3", path_, frame.width, frame.height,
                frame.channels, opt_.width, opt_.height);
  write(frame.data.data());
}

// Moves every packet the encoder has ready into the muxer (flush: also the delayed ones).
void VideoWriter::drain(bool flush) {
  if (flush) {
    int r = avcodec_send_frame(enc_, nullptr);
    FOUNDRY_CHECK(r >= 0 || r == AVERROR_EOF, "video '{}': flushing {}: {}", path_, codec_, av_error(r));
  }
  while (true) {
    int r = avcodec_receive_packet(enc_, packet_);
    if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
    FOUNDRY_CHECK(r >= 0, "video '{}': encoding with {}: {}", path_, codec_, av_error(r));
    av_packet_rescale_ts(packet_, enc_->time_base, stream_->time_base);
    packet_->stream_index = stream_->index;
    r = av_interleaved_write_frame(fmt_, packet_);  // takes the packet's reference
    FOUNDRY_CHECK(r >= 0, "video '{}': writing a packet: {}", path_, av_error(r));
  }
}

void VideoWriter::close() {
  if (closed_) return;
  closed_ = true;
  try {
    drain(true);
    int r = av_write_trailer(fmt_);
    FOUNDRY_CHECK(r >= 0, "video '{}': writing the trailer: {}", path_, av_error(r));
    if (!(fmt_->oformat->flags & AVFMT_NOFILE)) {
      r = avio_closep(&fmt_->pb);
      FOUNDRY_CHECK(r >= 0, "video '{}': closing: {}", path_, av_error(r));
    }
  } catch (...) {
    release();
    throw;
  }
  release();
}

}  // namespace foundry::video
