// CurateConfig: YAML sections -> typed structs through one table of fields (section, key, member).
#include "foundry/video/curate_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "foundry/core/check.h"
#include "foundry/core/crc32c.h"
#include "foundry/core/did_you_mean.h"
#include "foundry/core/yaml_sections.h"

namespace foundry::video {

namespace {

struct Field {
  std::function<void(CurateConfig&, const YAML::Node&)> set;
  std::function<std::string(const CurateConfig&)> get;
};

template <class S, class T>
Field field(S CurateConfig::*section, T S::*member, const std::string& key) {
  Field f;
  f.set = [=](CurateConfig& c, const YAML::Node& n) {
    FOUNDRY_CHECK(n.IsDefined() && !n.IsNull(), "curate config key '{}': no value", key);
    try {
      if constexpr (std::is_same_v<T, std::vector<std::string>>) {
        if (n.IsScalar()) {  // one name, or several separated by spaces or commas
          std::string text = n.Scalar();
          std::replace(text.begin(), text.end(), ',', ' ');
          std::istringstream in(text);
          T words;
          for (std::string w; in >> w;) words.push_back(w);
          (c.*section).*member = words;
          return;
        }
      }
      (c.*section).*member = n.as<T>();
    } catch (const YAML::Exception&) {
      FOUNDRY_FAIL("curate config key '{}': value '{}' is not a valid {}", key,
                   n.IsScalar() ? n.Scalar() : std::string("<non-scalar>"),
                   std::is_same_v<T, bool> ? "boolean" : std::is_same_v<T, std::string> ? "string"
                   : std::is_floating_point_v<T> ? "number" : std::is_integral_v<T> ? "integer" : "list of names");
    }
  };
  f.get = [=](const CurateConfig& c) {
    YAML::Emitter out;
    out.SetBoolFormat(YAML::TrueFalseBool);
    out << YAML::Flow;
    const T& v = (c.*section).*member;
    if constexpr (std::is_floating_point_v<T>) out << fmt::format("{}", v);  // shortest round trip
    else out << v;
    return std::string(out.c_str());
  };
  return f;
}

using Table = std::map<std::string, std::map<std::string, Field>>;

const Table& fields() {
  static const Table table = [] {
    Table t;
    using C = CurateConfig;
#define FOUNDRY_CURATE_FIELD(sec, key) t[#sec][#key] = field(&C::sec, &decltype(C::sec)::key, #sec "." #key)
    FOUNDRY_CURATE_FIELD(detect, detector);
    FOUNDRY_CURATE_FIELD(detect, threshold);
    FOUNDRY_CURATE_FIELD(detect, min_scene_len);
    FOUNDRY_CURATE_FIELD(detect, luma_only);
    FOUNDRY_CURATE_FIELD(detect, downscale);
    FOUNDRY_CURATE_FIELD(split, min_length_s);
    FOUNDRY_CURATE_FIELD(split, min_length_frames);
    FOUNDRY_CURATE_FIELD(split, max_length_s);
    FOUNDRY_CURATE_FIELD(split, max_length_mode);
    FOUNDRY_CURATE_FIELD(split, crop_s);
    FOUNDRY_CURATE_FIELD(transcode, width);
    FOUNDRY_CURATE_FIELD(transcode, height);
    FOUNDRY_CURATE_FIELD(transcode, max_short_side);
    FOUNDRY_CURATE_FIELD(transcode, fps);
    FOUNDRY_CURATE_FIELD(transcode, bit_rate);
    FOUNDRY_CURATE_FIELD(transcode, codecs);
    FOUNDRY_CURATE_FIELD(transcode, preset);
    FOUNDRY_CURATE_FIELD(filter, min_duration_s);
    FOUNDRY_CURATE_FIELD(filter, max_duration_s);
    FOUNDRY_CURATE_FIELD(filter, min_short_side);
    FOUNDRY_CURATE_FIELD(filter, min_aspect);
    FOUNDRY_CURATE_FIELD(filter, max_aspect);
    FOUNDRY_CURATE_FIELD(filter, motion);
    FOUNDRY_CURATE_FIELD(filter, motion_global_mean);
    FOUNDRY_CURATE_FIELD(filter, motion_per_patch_min);
    FOUNDRY_CURATE_FIELD(filter, motion_min_short_side);
    FOUNDRY_CURATE_FIELD(filter, static_blank);
    FOUNDRY_CURATE_FIELD(filter, blank_luma_std);
    FOUNDRY_CURATE_FIELD(filter, blank_fraction);
    FOUNDRY_CURATE_FIELD(filter, static_difference);
    FOUNDRY_CURATE_FIELD(dedup, enabled);
    FOUNDRY_CURATE_FIELD(dedup, samples);
    FOUNDRY_CURATE_FIELD(dedup, max_distance);
    FOUNDRY_CURATE_FIELD(shard, enabled);
    FOUNDRY_CURATE_FIELD(shard, samples_per_shard);
    FOUNDRY_CURATE_FIELD(shard, frame_window);
    FOUNDRY_CURATE_FIELD(run, workers);
    FOUNDRY_CURATE_FIELD(run, keep_dropped_clips);
#undef FOUNDRY_CURATE_FIELD
    return t;
  }();
  return table;
}

const Field& find_field(const std::string& section, const std::string& key, const std::string& where) {
  const Table& t = fields();
  auto s = t.find(section);
  FOUNDRY_CHECK(s != t.end(), "{}: unknown curate config section '{}'{}", where, section, did_you_mean(section, t));
  auto f = s->second.find(key);
  FOUNDRY_CHECK(f != s->second.end(), "{}: unknown curate config key '{}.{}'{}", where, section, key,
                did_you_mean(key, s->second, section + "."));
  return f->second;
}

std::string sections_yaml(const CurateConfig& c, const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& section : names) {
    out += section + ":\n";
    for (const auto& [key, f] : fields().at(section)) out += "  " + key + ": " + f.get(c) + "\n";
  }
  return out;
}

}  // namespace

CurateConfig CurateConfig::parse(const std::string& text, const std::string& source,
                                 const std::vector<std::string>& overrides) {
  CurateConfig c;
  for_each_yaml_key(text, source, fields(), "a curate config is a map of sections (detect:, split:, ...)",
                    [&](const std::string& section, const std::string& key, const YAML::Node& value) {
                      find_field(section, key, source).set(c, value);
                    });
  for (const std::string& o : overrides) c.set(o);
  c.validate();
  return c;
}

CurateConfig CurateConfig::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  FOUNDRY_CHECK(in.good(), "cannot open curate config '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path, overrides);
}

void CurateConfig::set(const std::string& assignment) {
  const YamlAssignment a = parse_yaml_assignment(assignment);
  find_field(a.section, a.key, "override").set(*this, a.value);
}

void CurateConfig::validate() const {
  const std::vector<std::string> detectors = {"content", "adaptive", "scdet", "select"};
  FOUNDRY_CHECK(std::find(detectors.begin(), detectors.end(), detect.detector) != detectors.end(),
                "detect.detector '{}' is not one of content, adaptive, scdet, select", detect.detector);
  FOUNDRY_CHECK(detect.min_scene_len >= 0 && detect.downscale >= 0,
                "detect.min_scene_len {} and detect.downscale {} must be >= 0", detect.min_scene_len, detect.downscale);
  FOUNDRY_CHECK(split.min_length_s >= 0 && split.min_length_frames >= 0 && split.max_length_s >= 0 && split.crop_s >= 0,
                "split.min_length_s, min_length_frames, max_length_s and crop_s must be >= 0");
  FOUNDRY_CHECK(split.max_length_mode == "stride" || split.max_length_mode == "truncate",
                "split.max_length_mode '{}' is not one of stride, truncate", split.max_length_mode);
  FOUNDRY_CHECK(transcode.width >= 0 && transcode.height >= 0 && transcode.max_short_side >= 0,
                "transcode.width {}, height {} and max_short_side {} must be >= 0", transcode.width, transcode.height,
                transcode.max_short_side);
  FOUNDRY_CHECK(transcode.fps >= 0 && transcode.fps <= 1000, "transcode.fps {} must be in [0, 1000] (0: the source's)",
                transcode.fps);
  FOUNDRY_CHECK(transcode.bit_rate > 0, "transcode.bit_rate {} must be positive (bits/s)", transcode.bit_rate);
  FOUNDRY_CHECK(!transcode.codecs.empty(), "transcode.codecs must name at least one encoder");
  FOUNDRY_CHECK(filter.min_duration_s >= 0 && filter.max_duration_s >= 0 && filter.min_short_side >= 0 &&
                    filter.min_aspect >= 0 && filter.max_aspect >= 0 && filter.motion_min_short_side >= 0,
                "filter.min_duration_s, max_duration_s, min_short_side, min_aspect, max_aspect and motion_min_short_side must be >= 0");
  FOUNDRY_CHECK(filter.blank_fraction >= 0 && filter.blank_fraction <= 1, "filter.blank_fraction {} must be in [0, 1]",
                filter.blank_fraction);
  FOUNDRY_CHECK(dedup.samples >= 1 && dedup.samples <= 1024, "dedup.samples {} must be in [1, 1024]", dedup.samples);
  FOUNDRY_CHECK(dedup.max_distance >= 0 && dedup.max_distance <= 64, "dedup.max_distance {} must be in [0, 64] bits",
                dedup.max_distance);
  FOUNDRY_CHECK(shard.samples_per_shard >= 1 && shard.frame_window >= 1,
                "shard.samples_per_shard {} and shard.frame_window {} must be >= 1", shard.samples_per_shard,
                shard.frame_window);
  FOUNDRY_CHECK(run.workers >= 0, "run.workers {} must be >= 0 (0: the number of cores)", run.workers);
}

std::string CurateConfig::to_yaml() const {
  std::vector<std::string> names;
  for (const auto& [section, keys] : fields()) names.push_back(section);
  return sections_yaml(*this, names);
}

std::string CurateConfig::processing_key() const {
  // filter.blank_luma_std decides which frames count as blank while they are measured.
  const std::string measured = sections_yaml(*this, {"detect", "split", "transcode"}) +
                               fmt::format("filter.blank_luma_std: {}\n", filter.blank_luma_std);
  return fmt::format("{:08x}", crc32c(measured));
}

}  // namespace foundry::video
