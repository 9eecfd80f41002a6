// Filter decisions on recorded scores, then dedup among the survivors (see the header).
#include "foundry/video/clip_decisions.h"

#include <cstdlib>

#include "foundry/core/check.h"
#include "foundry/video/dedup.h"
#include "foundry/video/frame_statistics.h"
#include "foundry/video/motion_filter.h"

namespace foundry::video {

namespace {

using json = nlohmann::json;

StaticBlankScores static_blank_from(const json& j) {
  StaticBlankScores s;
  s.frames = j.value("frames", int64_t{0});
  s.mean_luma = j.value("mean_luma", 0.0);
  s.mean_luma_std = j.value("mean_luma_std", 0.0);
  s.blank_fraction = j.value("blank_fraction", 0.0);
  s.mean_frame_difference = j.value("mean_frame_difference", 0.0);
  s.max_frame_difference = j.value("max_frame_difference", 0.0);
  return s;
}

MotionScores motion_from(const json& j) {
  MotionScores m;
  m.global_mean = j.value("global_mean", 0.0);
  m.per_patch_min_256 = j.value("per_patch_min_256", 0.0);
  m.frames_sampled = j.value("frames_sampled", 0);
  m.method = j.value("method", std::string());
  return m;
}

ClipFingerprint fingerprint_from(const json& j) {
  ClipFingerprint f;
  for (const auto& h : j) f.hashes.push_back(std::strtoull(h.get<std::string>().c_str(), nullptr, 16));
  return f;
}

}  // namespace

std::string reason_key(const std::string& reason) { return reason.substr(0, reason.find(':')); }

void decide_clips(std::vector<json>& clips, const CurateConfig& config) {
  const CurateFilterConfig& f = config.filter;
  std::vector<DedupItem> items;
  std::vector<size_t> item_clip;
  for (size_t i = 0; i < clips.size(); ++i) {
    json& c = clips[i];
    std::vector<std::string> reasons;
    if (c.contains("error")) {
      reasons.push_back("transcode_failed: " + c["error"].get<std::string>());
    } else {
      const double duration = c.value("duration", 0.0);
      if (f.min_duration_s > 0 && duration < f.min_duration_s)
        reasons.push_back(fmt::format("duration: {:.3f} s < filter.min_duration_s {}", duration, f.min_duration_s));
      if (f.max_duration_s > 0 && duration > f.max_duration_s)
        reasons.push_back(fmt::format("duration: {:.3f} s > filter.max_duration_s {}", duration, f.max_duration_s));
      const int sw = c.value("source_width", 0), sh = c.value("source_height", 0);
      if (f.min_short_side > 0 && std::min(sw, sh) < f.min_short_side)
        reasons.push_back(fmt::format("resolution: {}x{} has a short side < filter.min_short_side {}", sw, sh,
                                      f.min_short_side));
      const double aspect = sh > 0 ? double(sw) / sh : 0.0;
      if ((f.min_aspect > 0 && aspect < f.min_aspect) || (f.max_aspect > 0 && aspect > f.max_aspect))
        reasons.push_back(fmt::format("aspect_ratio: {:.4f} outside [filter.min_aspect {}, filter.max_aspect {}]", aspect,
                                      f.min_aspect, f.max_aspect));
      const json& scores = c["scores"];
      if (f.static_blank && scores.contains("static_blank")) {
        const StaticBlankScores s = apply_thresholds(
            static_blank_from(scores["static_blank"]),
            {.blank_luma_std = f.blank_luma_std, .blank_fraction = f.blank_fraction, .static_difference = f.static_difference});
        if (s.blank)
          reasons.push_back(fmt::format("blank: {:.3f} of the frames have a luma std-dev < filter.blank_luma_std {}",
                                        s.blank_fraction, f.blank_luma_std));
        else if (s.is_static)
          reasons.push_back(fmt::format("static: mean frame difference {:.4f} < filter.static_difference {}",
                                        s.mean_frame_difference, f.static_difference));
      }
      const int w = c.value("width", 0), h = c.value("height", 0);
      if (f.motion && f.motion_min_short_side > 0 && std::min(w, h) < f.motion_min_short_side) {
        reasons.push_back(fmt::format("low_motion: the clip is {}x{}, under filter.motion_min_short_side {} "
                                      "(cosmos-curate does not score smaller clips)", w, h, f.motion_min_short_side));
      } else if (f.motion && scores.contains("motion")) {
        MotionFilterOptions mo;
        mo.global_mean_threshold = f.motion_global_mean;
        mo.per_patch_min_threshold = f.motion_per_patch_min;
        const MotionScores m = motion_from(scores["motion"]);
        if (is_low_motion(m, mo))
          reasons.push_back(fmt::format("low_motion: global_mean {:.6g} (< {}) or per_patch_min_256 {:.3g} (< {}), {}",
                                        m.global_mean, f.motion_global_mean, m.per_patch_min_256,
                                        f.motion_per_patch_min, m.method));
      }
    }
    c["drop_reasons"] = reasons;
    c["kept"] = reasons.empty();
    c["dedup_group"] = nullptr;
    c["duplicate_of"] = nullptr;
    if (reasons.empty() && config.dedup.enabled && c.contains("fingerprint") && !c["fingerprint"].empty()) {
      const double pixels = double(c.value("width", 0)) * c.value("height", 0) * c.value("frames", int64_t{0});
      items.push_back({fingerprint_from(c["fingerprint"]), pixels});
      item_clip.push_back(i);
    }
  }
  if (items.empty()) return;
  const DedupResult d = dedup_clips(items, {.max_distance = config.dedup.max_distance});
  for (size_t k = 0; k < items.size(); ++k) {
    json& c = clips[item_clip[k]];
    c["dedup_group"] = d.group[k];
    if (!d.keep[k]) {
      const std::string& original = clips[item_clip[static_cast<size_t>(d.kept_of[k])]]["clip"].get_ref<const std::string&>();
      c["duplicate_of"] = original;
      c["drop_reasons"].push_back("duplicate: near-duplicate of " + original);
      c["kept"] = false;
    }
  }
}

}  // namespace foundry::video
