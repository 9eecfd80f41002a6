// MoE routing metrics over a logging interval (Megatron's --moe-per-layer-logging and
// track_moe_metrics, reported per log line):
//   load[l][e]   = tokens routed to expert e of MoE layer l / mean tokens per expert of layer l
//                  (1 = balanced, 0 = unused), over the interval's steps and microbatches
//   max_load     = max over layers and experts of load[l][e]
//   dropped_frac = token-expert selections dropped by the capacity / all selections
//   aux_loss, z_loss = per-step MoE auxiliary losses (coefficients included, each step's value the
//                  mean over its microbatches), averaged over MoE layers and the interval's steps
// Written as metrics.jsonl fields moe_aux_loss, moe_z_loss, moe_max_load, moe_dropped_frac and
// moe_load.L.E (L = decoder layer index), which `foundry plot` draws (train/expert_load.h).
#pragma once

#include <string>
#include <vector>

#include "foundry/models/gpt/gpt_model.h"
#include "foundry/train/metrics_log.h"

namespace foundry {

class MoEIntervalStats {
 public:
  void add_step(const std::vector<MoELayerStats>& step);  // StepStats::moe of one step
  bool empty() const { return steps_ == 0; }
  void reset();

  double aux_loss() const;
  double z_loss() const;
  double max_load() const;
  double dropped_frac() const;
  std::vector<double> load(size_t layer_slot) const;  // per expert, of the slot-th MoE layer
  const std::vector<MoELayerStats>& layers() const { return sum_; }

  // " | aux loss 1.02e-02 | z loss 3.1e-04 | max load 1.35 | dropped 0.0%"
  std::string log_suffix() const;
  void write(MetricsRecord& record) const;

 private:
  std::vector<MoELayerStats> sum_;  // counts and losses summed over the interval
  int64_t steps_ = 0;
};

}  // namespace foundry
