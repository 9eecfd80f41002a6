#include "foundry/train/moe_metrics.h"

#include <algorithm>

#include <fmt/format.h>

#include "foundry/core/check.h"

namespace foundry {

void MoEIntervalStats::add_step(const std::vector<MoELayerStats>& step) {
  if (step.empty()) return;
  if (sum_.empty()) {
    sum_ = step;
  } else {
    FOUNDRY_CHECK(sum_.size() == step.size(), "MoEIntervalStats: {} MoE layers, then {}", sum_.size(), step.size());
    for (size_t i = 0; i < step.size(); ++i) {
      MoELayerStats& s = sum_[i];
      for (size_t e = 0; e < s.tokens_per_expert.size(); ++e) s.tokens_per_expert[e] += step[i].tokens_per_expert[e];
      s.routed += step[i].routed;
      s.dropped += step[i].dropped;
      s.aux_loss += step[i].aux_loss;
      s.z_loss += step[i].z_loss;
    }
  }
  ++steps_;
}

void MoEIntervalStats::reset() {
  sum_.clear();
  steps_ = 0;
}

double MoEIntervalStats::aux_loss() const {
  double a = 0;
  for (const MoELayerStats& s : sum_) a += s.aux_loss;
  return sum_.empty() ? 0.0 : a / static_cast<double>(sum_.size() * static_cast<size_t>(steps_));
}

double MoEIntervalStats::z_loss() const {
  double z = 0;
  for (const MoELayerStats& s : sum_) z += s.z_loss;
  return sum_.empty() ? 0.0 : z / static_cast<double>(sum_.size() * static_cast<size_t>(steps_));
}

std::vector<double> MoEIntervalStats::load(size_t slot) const {
  const std::vector<int64_t>& n = sum_.at(slot).tokens_per_expert;
  double total = 0;
  for (int64_t v : n) total += static_cast<double>(v);
  const double mean = total / static_cast<double>(n.size());
  std::vector<double> out(n.size(), 0.0);
  if (mean > 0)
    for (size_t e = 0; e < n.size(); ++e) out[e] = static_cast<double>(n[e]) / mean;
  return out;
}

double MoEIntervalStats::max_load() const {
  double m = 0;
  for (size_t i = 0; i < sum_.size(); ++i)
    for (double v : load(i)) m = std::max(m, v);
  return m;
}

double MoEIntervalStats::dropped_frac() const {
  int64_t routed = 0, dropped = 0;
  for (const MoELayerStats& s : sum_) routed += s.routed, dropped += s.dropped;
  return routed > 0 ? static_cast<double>(dropped) / static_cast<double>(routed) : 0.0;
}

std::string MoEIntervalStats::log_suffix() const {
  if (empty()) return "";
  return fmt::format(" | aux loss {:.3e} | z loss {:.3e} | max load {:.2f} | dropped {:.1f}%", aux_loss(), z_loss(),
                     max_load(), 100 * dropped_frac());
}

void MoEIntervalStats::write(MetricsRecord& r) const {
  if (empty()) return;
  r.set("moe_aux_loss", aux_loss()).set("moe_z_loss", z_loss()).set("moe_max_load", max_load());
  r.set("moe_dropped_frac", dropped_frac());
  for (size_t i = 0; i < sum_.size(); ++i) {
    const std::vector<double> l = load(i);
    for (size_t e = 0; e < l.size(); ++e) r.set(fmt::format("moe_load.{}.{}", sum_[i].layer, e), l[e]);
  }
}

}  // namespace foundry
