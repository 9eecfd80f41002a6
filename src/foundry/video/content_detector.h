// Shot detection on decoded frames, bit-exact with PySceneDetect 0.7.2 (scenedetect/detectors/
// content_detector.py, adaptive_detector.py, detector.py FlashFilter; reference video.md e.1, e.2):
//
//   HSV      OpenCV's 8-bit cvtColor(BGR2HSV) (imgproc color_hsv RGB2HSV_b, hsv_shift = 12):
//              v = max(b,g,r); diff = v - min(b,g,r); s = (diff*sdiv[v] + 2048) >> 12
//              h = v==r ? g-b : v==g ? b-r+2*diff : r-g+4*diff; h = (h*hdiv[diff] + 2048) >> 12; h<0: +180
//              sdiv[i] = cvRound((255<<12)/i), hdiv[i] = cvRound((180<<12)/(6i)), [0] = 0.  H in [0,180).
//   score    delta_c = sum |c_t - c_{t-1}| / (w*h) (integer sum, one double division; no hue wrap);
//            content_val = (((0 + dh*wh) + ds*ws) + dl*wl + de*we) / (|wh|+|ws|+|wl|+|we|)
//            (Python's left-to-right sum). The first frame scores 0 and only seeds the state.
//   edges    (only when the edge weight is > 0 or compute_edges is set; scenedetect computes them
//            whenever a StatsManager is attached): numpy.median(V) m, sigma = 1/3,
//            Canny(V, int(max(0,(1-sigma)m)), int(min(255,(1+sigma)m))) as OpenCV's canny.cpp
//            (Sobel 3x3 BORDER_REPLICATE, L1 magnitude, NMS with TG22 = round(tan(22.5deg)*2^15),
//            8-connected hysteresis), then dilate with a k x k box (k = 4 + round(sqrt(w*h)/192),
//            bumped to odd, unless kernel_size is given; out-of-image pixels do not count).
//   cuts     above = content_val >= threshold, then FlashFilter (MERGE / SUPPRESS, min_scene_len L
//            frames; L <= 0 disables it). AdaptiveDetector: ContentDetector scores buffered over
//            2w+1 frames; ratio of the centre score to the mean of the 2w others (255 cap; mean
//            < 1e-5 gives 255 when score >= min_content_val, else 0); cut at the centre frame when
//            ratio >= adaptive_threshold, score >= min_content_val and centre - last_cut >= L
//            (0.7.2 measures from the centre frame; v0.6 used the current frame). Events lag w frames.
//
// Frames are packed BGR24 (H, W, 3) uint8, rows contiguous. No downscaling happens here:
// PySceneDetect auto-downscales with cv2.resize(INTER_LINEAR) to about 256 px wide before
// detection; we do not replicate OpenCV's resize. The caller asks the decoder (swscale) for the
// analysis size, and the detector works on exactly the frames it is given (so scores match
// scenedetect's process_frame fed the same arrays, not `scenedetect` run on the same file).
//
// min_scene_len is in frames only (scenedetect also accepts seconds / timecode strings).
// Weights other than 0/1 could differ from Python by an ulp if the compiler fused c*w + acc into
// an FMA (ISO C++20 mode, as foundry builds, does not contract across statements).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace foundry::video {

// OpenCV 8-bit BGR -> HSV of one pixel (H in [0,180), S and V in [0,255]).
void bgr_to_hsv_opencv(uint8_t b, uint8_t g, uint8_t r, uint8_t& h, uint8_t& s, uint8_t& v);
// Whole packed frame: bgr (n_pixels*3) -> three planes hue, sat, lum (n_pixels each).
void bgr_to_hsv_opencv(std::span<const uint8_t> bgr, std::span<uint8_t> hue, std::span<uint8_t> sat,
                       std::span<uint8_t> lum);

// OpenCV Canny(img, low, high) (aperture 3, L1 gradient) of a w x h 8-bit plane: 255 on edges, else 0.
std::vector<uint8_t> canny_opencv(std::span<const uint8_t> img, int w, int h, int low, int high);
// cv2.dilate with a k x k kernel of ones (k odd), default border (ignored for the max).
std::vector<uint8_t> dilate_box(std::span<const uint8_t> img, int w, int h, int k);
// scenedetect's _estimated_kernel_size and _detect_edges (Canny at median-based thresholds + dilate).
int estimated_kernel_size(int w, int h);
std::vector<uint8_t> detect_edges(std::span<const uint8_t> lum, int w, int h, int kernel_size = 0);

// One decoded frame: packed BGR24, width*height*3 bytes.
struct FrameRef {
  std::span<const uint8_t> bgr;
  int width = 0;
  int height = 0;
  int64_t index = 0;  // frame number, sequential from the first frame given
};

// Per-frame record, named as scenedetect's StatsManager names the metrics.
struct FrameScore {
  int64_t frame = 0;
  bool has_metrics = false;  // false for the first frame (scenedetect records nothing there)
  double content_val = 0.0;
  double delta_hue = 0.0, delta_sat = 0.0, delta_lum = 0.0, delta_edges = 0.0;
};

struct ContentWeights {
  double hue = 1.0, sat = 1.0, lum = 1.0, edges = 0.0;
};

enum class FlashMode { merge, suppress };

// scenedetect.detector.FlashFilter with a length in frames.
class FlashFilter {
 public:
  FlashFilter(FlashMode mode, int64_t length) : mode_(mode), length_(length) {}
  std::optional<int64_t> filter(int64_t frame, bool above_threshold);

 private:
  FlashMode mode_;
  int64_t length_;
  std::optional<int64_t> last_above_, merge_start_;
  bool merge_enabled_ = false, merge_triggered_ = false;
};

struct ContentDetectorOptions {
  double threshold = 27.0;
  int64_t min_scene_len = 15;
  ContentWeights weights;
  bool luma_only = false;  // weights (0, 0, 1, 0); overrides `weights`
  FlashMode filter_mode = FlashMode::merge;
  bool compute_edges = false;  // record delta_edges even at edge weight 0 (scenedetect's statsfile)
  int kernel_size = 0;         // dilation kernel for edges; 0: from the frame size
};

class ContentDetector {
 public:
  explicit ContentDetector(ContentDetectorOptions opt = {});
  // Scores the frame; returns the cut frame (the first frame of a new scene) if one is emitted now.
  std::optional<int64_t> process(const FrameRef& frame);
  // End of input: scenedetect's post_process (ContentDetector emits nothing there).
  std::vector<int64_t> finish() { return {}; }
  const FrameScore& last_score() const { return last_; }
  const std::vector<FrameScore>& scores() const { return scores_; }
  // Score only (no cut filtering): used by AdaptiveDetector.
  const FrameScore& score(const FrameRef& frame);

 private:
  ContentDetectorOptions opt_;
  ContentWeights w_;
  FlashFilter flash_;
  int width_ = 0, height_ = 0;
  bool have_last_ = false;
  std::vector<uint8_t> hsv_[2][3];  // [cur/prev][h,s,v]
  std::vector<uint8_t> edges_[2];   // [cur/prev], empty when not computed
  int cur_ = 0;
  FrameScore last_;
  std::vector<FrameScore> scores_;
};

struct AdaptiveDetectorOptions {
  double adaptive_threshold = 3.0;
  int64_t min_scene_len = 15;
  int window_width = 2;
  double min_content_val = 15.0;
  ContentWeights weights;
  bool luma_only = false;
  bool compute_edges = false;
  int kernel_size = 0;
};

class AdaptiveDetector {
 public:
  explicit AdaptiveDetector(AdaptiveDetectorOptions opt = {});
  std::optional<int64_t> process(const FrameRef& frame);
  std::vector<int64_t> finish() { return {}; }
  const std::vector<FrameScore>& scores() const { return content_.scores(); }
  // (centre frame, adaptive_ratio) for every frame that reached the window centre.
  const std::vector<std::pair<int64_t, double>>& ratios() const { return ratios_; }

 private:
  AdaptiveDetectorOptions opt_;
  ContentDetector content_;
  std::deque<std::pair<int64_t, double>> buffer_;
  std::optional<int64_t> last_cut_;
  std::vector<std::pair<int64_t, double>> ratios_;
};

// A scene [start, end) in frames, as `scenedetect list-scenes` prints them.
struct Scene {
  int64_t start = 0, end = 0;
};
// Scenes from sorted cuts over frames [start, end): one scene when there are no cuts
// (get_scene_list(start_in_scene=True), what the CLI uses).
std::vector<Scene> scenes_from_cuts(std::span<const int64_t> cuts, int64_t start, int64_t end);
// "HH:MM:SS.mmm" of frame / fps, as FrameTimecode.get_timecode() (rounded to ms). For NTSC rates
// pass the exact ratio (30000.0 / 1001), as scenedetect converts 29.97 to that fraction.
std::string frame_timecode(int64_t frame, double fps);
double frame_seconds(int64_t frame, double fps);

}  // namespace foundry::video
