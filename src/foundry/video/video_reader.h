// VideoReader: decodes one video stream with FFmpeg's libav* (Debian 12: FFmpeg 5.1) into packed
// 8-bit frames for analysis (shot detection, filters) and clip extraction.
//
// Pipeline (the same as `ffmpeg -i v -f rawvideo -pix_fmt bgr24 -s WxH -`, and as OpenCV's
// cv2.VideoCapture, which goes through the same libraries):
//   av_read_frame -> avcodec_send_packet / avcodec_receive_frame (frame + slice threads)
//   -> best_effort_timestamp -> sws_scale to packed BGR24 / RGB24 / GRAY8 at the analysis size.
//
// Scaling (sws flags), chosen by the output size unless ReaderOptions::sws_flags says otherwise:
//   - analysis size differs from the source: SWS_BILINEAR (like cv2.resize INTER_LINEAR; not
//     bit-identical to it: swscale filters in fixed point over the decoded YUV planes);
//   - source size: SWS_POINT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, i.e. no luma resampling,
//     chroma interpolated to full resolution and an exactly rounded YUV->RGB conversion (a
//     lossless H.264 round trip of flat colours comes back within 1 LSB). Any other flag set at the
//     source size (OpenCV's cv2.VideoCapture passes SWS_BICUBIC; so does the ffmpeg CLI by default)
//     takes swscale's fast unscaled yuv2rgb path, which rounds through 8-bit tables and differs by
//     a few LSB: pass sws_flags = SWS_BICUBIC to reproduce OpenCV's BGR frames.
// The YUV->RGB matrix and range are swscale's defaults for the pixel format (BT.601; full range
// for the yuvj* formats), which is what ffmpeg 5.1's CLI and OpenCV use.
//
// Damage: a truncated or corrupt file is not an exception once it is open. Decoding errors are
// counted (errors(), error_message()); frames that decode are still returned; a stream that ends
// before the frame count or duration its container announced counts as one error too. So a
// caller tells a clean end (next() == false, errors() == 0) from a damaged one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct AVFormatContext;
struct AVCodecContext;
struct AVFrame;
struct AVPacket;
struct SwsContext;

namespace foundry::video {

// Output layout of a decoded frame: packed 8-bit, (H, W, C) with C = 3 (BGR, RGB) or 1 (GRAY).
enum class PixelFormat { bgr24, rgb24, gray8 };
int channels(PixelFormat f);
const char* name(PixelFormat f);

struct Rational {
  int num = 0, den = 1;
  double value() const { return den == 0 ? 0.0 : double(num) / double(den); }
};

struct VideoInfo {
  std::string path;
  int width = 0, height = 0;     // coded picture size of the stream (the source size)
  Rational fps;                  // avg_frame_rate, else r_frame_rate
  double fps_value = 0;          // fps.value()
  Rational time_base;            // the stream's: Frame::pts * time_base = seconds
  double start_time = 0;         // the stream's first timestamp in seconds (Frame::time is relative to it)
  double duration = 0;           // seconds: the stream's duration, else the container's
  int64_t frame_count = 0;       // the container's nb_frames when known, else round(duration * fps)
  bool frame_count_exact = false;  // true when frame_count came from the container
  std::string codec;             // decoder name, e.g. "h264"
  std::string pixel_format;      // the decoder's output format, e.g. "yuv420p"
  std::string container;         // demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
};

// One block's motion vector as FFmpeg exports it (AVMotionVector, libavutil/motion_vector.h),
// field for field. The vector points from the block in this frame to its reference:
//   src = dst + motion / motion_scale   (pixels; dst_x, dst_y = the block's centre here)
// so content moving right by d pixels a frame has motion_x / motion_scale = -d for a reference one
// frame back (source < 0: a past reference; source > 0: a future one, then +d). H.264 exports
// 16x16, 16x8, 8x16 and 8x8 blocks (sub-8x8 partitions as their 8x8), one vector per reference list.
struct MotionVector {
  int32_t source;       // -1: a past reference (list 0), +1: a future one (list 1)
  uint8_t w, h;         // block size in pixels
  int16_t src_x, src_y; // the block's centre in the reference
  int16_t dst_x, dst_y; // the block's centre in this frame
  uint64_t flags;
  int32_t motion_x, motion_y;  // src - dst in 1/motion_scale pixels
  uint16_t motion_scale;
};

// One decoded frame. data holds height rows of width * channels bytes, no padding.
struct Frame {
  std::vector<uint8_t> data;  // (H, W, C) u8
  int width = 0, height = 0, channels = 0;
  int64_t index = -1;  // 0, 1, 2, ... in output order (after seek: round(time * fps))
  int64_t pts = 0;     // best_effort_timestamp in the stream's time_base
  double time = 0;     // seconds from the stream's start: (pts - start) * time_base
  char picture_type = '?';  // 'I', 'P', 'B', ... (av_get_picture_type_char); '?' when unknown
  // AV_FRAME_DATA_MOTION_VECTORS side data, when ReaderOptions::export_motion_vectors; empty for
  // frames without inter blocks (I frames) and for decoders that export none.
  std::vector<MotionVector> motion_vectors;
  const uint8_t* pixel(int y, int x) const { return data.data() + (int64_t(y) * width + x) * channels; }
};

struct ReaderOptions {
  int out_width = 0;   // analysis size; 0 = the source's (one of the two 0 keeps the aspect ratio)
  int out_height = 0;
  PixelFormat format = PixelFormat::bgr24;
  int threads = 0;     // decoder threads, 0 = auto (FFmpeg picks from the CPU count)
  int sws_flags = 0;   // 0 = the rule in the file header; otherwise passed to sws_getContext as is
  // Opens the decoder with flags2 +export_mvs (Frame::motion_vectors). Decodes with slice threads
  // only: frame-threaded h264 exports the vectors of a picture another thread may still be decoding.
  bool export_motion_vectors = false;
  bool convert = true; // false: no swscale; next() leaves Frame::data empty (width/height = the decoded
                       // frame's, channels = 0) and the picture is only in decoded()
};

class VideoReader {
 public:
  // Opens path and its best video stream; throws foundry::Error naming the file when it is
  // missing, is not a media file, has no video stream or its codec has no decoder here.
  explicit VideoReader(const std::string& path, const ReaderOptions& options = {});
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const { return info_; }
  int out_width() const { return out_w_; }
  int out_height() const { return out_h_; }

  // The next frame in presentation order; false at the end of the stream (clean or damaged).
  bool next(Frame& frame);

  // The decoder's own frame (native pixel format, e.g. yuv420p) behind the last frame next()
  // returned; valid until the next call to next() or seek(); nullptr before the first frame and
  // after the end.
  const AVFrame* decoded() const;

  // Positions the reader so that next() returns the first frame whose time is >= seconds:
  // seeks to the keyframe at or before it and decodes forward (frame-accurate). Returns false
  // when no frame lies at or after seconds (next() then returns false).
  bool seek(double seconds);

  int64_t errors() const { return errors_; }  // decoding / demuxing errors so far
  // "'PATH': N error(s) while decoding; the first: WHAT" ("" when none).
  const std::string& error_message() const { return message_; }
  bool damaged() const { return errors_ > 0; }
  int64_t frames_returned() const { return returned_; }

 private:
  void release();
  int receive(AVFrame* out);  // 1 = a frame, 0 = end of stream
  void convert(const AVFrame* in, Frame& out);
  void copy_side_data(const AVFrame* in, Frame& out) const;  // picture type, motion vectors
  void record_error(const std::string& what);
  void check_truncation();

  std::string path_;
  ReaderOptions opt_;
  VideoInfo info_;
  int out_w_ = 0, out_h_ = 0;
  AVFormatContext* fmt_ = nullptr;
  AVCodecContext* dec_ = nullptr;
  SwsContext* sws_ = nullptr;
  AVFrame* frame_ = nullptr;    // decoder output
  AVFrame* pending_ = nullptr;  // a frame found by seek(), returned by the next next()
  AVFrame* rgb_ = nullptr;      // aligned swscale output, copied into Frame::data
  AVFrame* decoded_ = nullptr;  // the decoder's frame behind the last next() (decoded())
  AVPacket* packet_ = nullptr;
  int stream_ = -1;
  int64_t start_pts_ = 0;
  bool input_done_ = false;     // the demuxer reached its end; the decoder was sent the flush packet
  bool finished_ = false;       // the decoder returned AVERROR_EOF
  bool has_pending_ = false;
  bool counted_ = false;        // frame indices are exact (decoded from the start, no seek)
  int64_t next_index_ = 0;
  int64_t returned_ = 0;
  int64_t decoded_since_start_ = 0;
  double last_time_ = -1;
  double expected_end_ = -1;    // the stream's announced duration in seconds (-1: unknown)
  int64_t errors_ = 0;
  std::string first_error_;
  std::string message_;
};

// libav* logs to stderr through one process-wide callback; quiet it (AV_LOG_ERROR and below are
// still counted by VideoReader through return codes). level: an AV_LOG_* value.
void set_libav_log_level(int level);

}  // namespace foundry::video
