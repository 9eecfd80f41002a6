// Clip splitting with the cosmos-curate rules (see the header): stride / truncate at the maximum
// length, crop both ends, drop what is shorter than the minimum.
#include "foundry/video/clip_splitter.h"

#include <algorithm>
#include <cmath>

#include "foundry/core/check.h"

namespace foundry::video {

SplitResult split_clips(const std::vector<Scene>& shots, double fps, const SplitOptions& o) {
  FOUNDRY_CHECK(fps > 0 && std::isfinite(fps), "split_clips: fps {} must be positive", fps);
  FOUNDRY_CHECK(o.min_length_s >= 0 && o.min_length_frames >= 0, "split.min_length_s {} and split.min_length_frames {} "
                "must be >= 0", o.min_length_s, o.min_length_frames);
  FOUNDRY_CHECK(o.max_length_s >= 0 && o.crop_s >= 0, "split.max_length_s {} and split.crop_s {} must be >= 0",
                o.max_length_s, o.crop_s);
  FOUNDRY_CHECK(o.max_length_mode == "stride" || o.max_length_mode == "truncate",
                "split.max_length_mode '{}' is not one of stride, truncate", o.max_length_mode);
  SplitResult r;
  r.min_length = std::max(static_cast<int64_t>(std::ceil(o.min_length_s * fps - 1e-9)), o.min_length_frames);
  r.max_length = static_cast<int64_t>(o.max_length_s * fps);
  r.crop_length = static_cast<int64_t>(o.crop_s * fps);
  FOUNDRY_CHECK(o.max_length_s == 0 || r.max_length > 0, "split.max_length_s {} is under one frame at {} fps",
                o.max_length_s, fps);

  // 1. Maximum length.
  std::vector<ClipRange> spans;
  for (size_t s = 0; s < shots.size(); ++s) {
    const int64_t start = shots[s].start, end = shots[s].end;
    FOUNDRY_CHECK(end >= start && (s == 0 || start >= shots[s - 1].end),
                  "split_clips: shot {} [{}, {}) is empty-reversed or overlaps the previous one", s, start, end);
    const auto shot = static_cast<int64_t>(s);
    if (r.max_length == 0 || end - start <= r.max_length) {
      spans.push_back({shot, start, end});
    } else if (o.max_length_mode == "truncate") {
      spans.push_back({shot, start, start + r.max_length});
      r.dropped.push_back({shot, start + r.max_length, end, "beyond max_length (truncate mode)"});
    } else {
      for (int64_t a = start; a < end; a += r.max_length) {
        const int64_t b = std::min(a + r.max_length, end);
        if (b == end && b - a < r.min_length) {
          r.dropped.push_back({shot, a, b, fmt::format("last stride span shorter than min_length ({} < {} frames)",
                                                       b - a, r.min_length)});
          break;
        }
        spans.push_back({shot, a, b});
      }
    }
  }
  // 2. Crop, then 3. minimum length.
  for (const ClipRange& c : spans) {
    const int64_t a = c.start_frame + r.crop_length, b = c.end_frame - r.crop_length;
    if (b <= a) {
      r.dropped.push_back({c.shot, c.start_frame, c.end_frame, "empty after cropping"});
    } else if (b - a < r.min_length) {
      r.dropped.push_back({c.shot, c.start_frame, c.end_frame,
                           fmt::format("shorter than min_length after cropping ({} < {} frames)", b - a, r.min_length)});
    } else {
      r.clips.push_back({c.shot, a, b});
    }
  }
  return r;
}

}  // namespace foundry::video
