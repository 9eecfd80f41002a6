// Motion filter: cosmos-curate's motion-vector "small motion" test (reference/video.md b.4, e.3;
// nvidia-cosmos/cosmos-curate cosmos_curate/pipelines/video/filtering/motion/
// motion_vector_backend.py: decode_for_motion + motion_vectors_to_flowfield + check_if_small_motion).
//
// 1. Sampling. Decode with flags2 +export_mvs. Frame i (decoder output order, from 0) is sampled
//    when i % step == 0, step = max(1, round(fps / target_fps)) (round half to even, as Python's
//    round; fps = the stream's average rate, else its base rate, else 30). Sampled frames that
//    carry motion vectors (I frames carry none and do not count) are kept until there are
//    max_frames = max(10, round(target_fps * D * target_duration_ratio)) of them. D is the
//    clip's duration truncated to whole seconds (30 when that is 0): upstream's
//    `stream.duration * int(stream.time_base)` is always 0 (int(1/12800) == 0), so it falls back
//    to `int(container.duration / 1e6)`; b.4's max(10, round(2 * 0.5 * duration)) on that value.
//    (Here D comes from VideoInfo::duration: the video stream's duration, else the container's.)
// 2. Flow. Per kept frame, an H x W field (the decoded picture size) starts at zero; each vector
//    whose block is 8x8, 16x16, 16x8 or 8x16 (w x h; others are ignored) writes
//    delta = -(motion_x, motion_y) / motion_scale into the pixels
//      x in [dst_x - w/2, dst_x + w/2), y in [dst_y - h/2, dst_y + h/2),
//    each coordinate clamped to the frame (so a block past the edge writes onto the edge pixels).
//    Writes do not accumulate; later writes win, in upstream's order: all 8x8 blocks, then all
//    16x16, then 16x8, then 8x16, each group in side-data order (torch index_put_ over the
//    concatenated groups; B frames export a past and a future vector per block, the future one
//    comes second and wins). m = |delta|_2 / (W + H).
// 3. Scores. global_mean = mean of m over all pixels and kept frames. per_patch_min_256 = min of
//    cv2.resize(mean_t m, None, fx=1/256, fy=1/256) with INTER_LINEAR: the output is
//    round_half_even(W/256) x round_half_even(H/256) and output pixel (i, j) samples the input at
//    ((j + 0.5) * 256 - 0.5, (i + 0.5) * 256 - 0.5) bilinearly, i.e. the mean of the 2x2 pixels
//    127..128 + 256k in each axis (the last pixel at the far edge when 128 + 256k falls outside):
//    it samples, it does not average a 256x256 patch.
//    low_motion = global_mean < global_mean_threshold || per_patch_min_256 < per_patch_min_threshold.
// Arithmetic is in double (upstream: float32 tensors), so scores agree with upstream to ~1e-6
// relative, not bit for bit. Decoding uses slice threads only (ReaderOptions::export_motion_vectors):
// FFmpeg 5.1's frame-threaded h264 exports racy vectors (a B-frame clip here gave three different
// global means over eight runs); upstream decodes with PyAV thread_type AUTO, which is exposed to
// the same race, so its scores on such clips can vary from run to run where these do not.
//
// Size rule: cosmos-curate rejects clips with min(H, W) < 256 (VideoResolutionTooSmallError; the
// stage then records scores of -1, which its thresholds count as low motion). Here the scores are
// still computed for small clips: the resize output is at least 1 x 1 (cv2 would fail for a side
// of 128 or less, whose rounded size is 0), and for a side below 128 the one sample is the last
// pixel of that axis. A caller that wants upstream's rule checks the size itself.
//
// Fallback: a codec whose decoder exports no motion vectors (HEVC, VP9, all-intra streams; upstream
// records "no_motion_frames" and drops the clip) is scored by frame differences instead:
// global_mean = mean over consecutive sampled frames (at most max_frames + 1 of them) of
// mean |Y_t - Y_{t-1}| / 255 on the decoded luma (GRAY8 at the source size), per_patch_min_256 =
// the same resize of the per-pixel mean of |Y_t - Y_{t-1}| / 255 (recorded, not thresholded), and
// low_motion = global_mean < frame_difference_threshold (a clip of one sampled frame scores 0: low).
#pragma once

#include <cstdint>
#include <string>

namespace foundry::video {

struct MotionFilterOptions {
  double global_mean_threshold = 0.00098;
  double per_patch_min_threshold = 1e-6;
  double target_fps = 2.0;             // keep every round(fps/target_fps)-th frame
  double target_duration_ratio = 0.5;  // max_frames = max(10, round(target_fps * D * ratio)), see above
  // Frame-difference fallback threshold on mean |dY| / 255 between sampled frames (0.5 s apart at
  // 2 fps): 0.01 is 2.55 luma levels. Coding noise of a static shot re-encoded at ~4 Mb/s changes
  // pixels by well under one level on average, while a pan or a moving subject over textured
  // content moves the mean by many levels over half a second; 0.01 sits between the two, and a
  // clip scored this way near the line is one whose motion-vector score would be small too.
  double frame_difference_threshold = 0.01;
  int threads = 0;  // decoder threads, 0 = auto
};

struct MotionScores {
  double global_mean = 0;        // mean of |flow|/(W+H) over pixels and sampled frames
  double per_patch_min_256 = 0;  // min over the 1/256 INTER_LINEAR resize of the per-pixel time mean
  int frames_sampled = 0;        // frames that entered the scores (with vectors, or luma frames for the fallback)
  std::string method;            // "motion_vectors" or "frame_difference" (codec without motion vectors)
  bool low_motion = false;       // global_mean < threshold || per_patch_min_256 < threshold
  int width = 0, height = 0;     // the decoded picture size the flow was rasterised at
  int64_t decode_errors = 0;     // VideoReader::errors() when scoring stopped
};

// Scores one clip. Throws foundry::Error naming the file when it cannot be opened or decodes to no
// frame at all.
MotionScores motion_scores(const std::string& clip_path, const MotionFilterOptions& options = {});

// The thresholds of o applied to recorded scores (the method decides which rule).
bool is_low_motion(const MotionScores& s, const MotionFilterOptions& o);

// The pieces, exposed for tests and for callers that already hold decoded vectors.
// Frame sampling step and frame budget of step 1.
int motion_sample_step(double fps, double target_fps);
int motion_max_frames(double duration_seconds, double target_fps, double target_duration_ratio);
// cv2.resize(src (rows x cols, f64 row-major), None, fx=1/256, fy=1/256, INTER_LINEAR).min().
double min_of_resize_256(const double* src, int rows, int cols);

}  // namespace foundry::video
