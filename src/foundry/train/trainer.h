// Trainer: the training loop of `foundry train` (Megatron's pretrain loop): global batches of
// microbatches, the LR schedule, clipping, AdamW, NaN/Inf handling (stop or skip by
// train.nan_action), periodic evaluation on the valid split, log lines, metrics.jsonl and
// TensorBoard, and atomic checkpoints from which a new process resumes bit-identically.
// Parallelism: given the communicator the run spans (default: the MPI world; one process = a world
// of one), the trainer lays the `parallel:` sizes out as a Mesh (comm/mesh.h) and builds the model
// split over its tensor / expert / pipeline groups (train/parallel_checks.h model_parallel_of).
// Each data-parallel replica trains on its share of every global batch (microbatches
// m % DP == dp rank; every rank of a replica sees the same ones), train_step reduces the
// gradients over the groups, world rank 0 alone logs and writes checkpoints (a split model is
// first assembled on it: train/model_parallel_checkpoint.h), and every rank resumes from them
// under any layout.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "foundry/comm/mesh.h"
#include "foundry/data/tokenizer.h"
#include "foundry/optim/lr_schedule.h"
#include "foundry/train/batch_source.h"
#include "foundry/train/config.h"
#include "foundry/train/train_step.h"

namespace foundry {

class Trainer {
 public:
  struct Data {
    std::unique_ptr<BatchSource> train;
    std::unique_ptr<BatchSource> valid;  // may be null: no evaluation
  };

  Trainer(const RunConfig& cfg, Data data, std::shared_ptr<const Tokenizer> tokenizer = nullptr,
          std::FILE* log = stdout, Communicator* world = nullptr);
  ~Trainer();

  // Loads the checkpoint named by train.load, else the latest one in output_dir/checkpoints; a
  // checkpoint without optimizer state (`foundry upcycle`'s) starts AdamW fresh. With none and
  // model.upcycle_from set, every rank converts its shard of the dense checkpoint into the model
  // and takes the dense run's step, data position and RNG (train/upcycling.h); with a checkpoint
  // the flag is ignored. Returns false when there is nothing to start from (a fresh run).
  bool resume();
  // Trains until `step` == until (default train.train_iters), evaluating, logging and saving
  // on the configured intervals; saves at the end.
  void train(int64_t until = -1);
  // Mean loss over train.eval_iters batches of the valid source.
  double evaluate();
  void save_checkpoint();

  int64_t step() const { return step_; }
  GPTModel& model() { return *model_; }
  const GPTModel& model() const { return *model_; }
  AdamW& optimizer() {  // the replicated optimizer (not with train.use_distributed_optimizer)
    FOUNDRY_CHECK(optimizer_ != nullptr, "Trainer::optimizer: the run uses the distributed optimizer");
    return *optimizer_;
  }
  int64_t optimizer_steps() const { return zero_ ? zero_->steps() : optimizer_->steps(); }
  const RunConfig& config() const { return cfg_; }
  const std::vector<double>& step_losses() const { return step_losses_; }  // one per step run here
  std::string checkpoint_root() const { return cfg_.train.output_dir + "/checkpoints"; }

 private:
  struct Logging;
  void log_interval_line(const StepStats& st, float lr);
  void say(const std::string& line);
  void upcycle_from_dense();  // model.upcycle_from: online upcycling (resume())  // one log line (above the progress bar on a terminal)
  bool logs() const { return world_->rank() == 0; }  // this rank writes logs and files

  RunConfig cfg_;
  Data data_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::FILE* log_;
  Communicator* world_;
  std::unique_ptr<Mesh> mesh_;
  Communicator* dp_;  // the mesh's data-parallel group (dp_cp)
  int64_t global_microbatches_ = 1;  // per step, over all data-parallel ranks
  std::unique_ptr<GPTModel> model_;
  std::unique_ptr<AdamW> optimizer_;            // replicated AdamW, or
  std::unique_ptr<DistributedAdamW> zero_;      // ZeRO-1 (train.use_distributed_optimizer): the whole
                                                // arena, or the dense parameters of a split model
  std::unique_ptr<DistributedAdamW> zero_expert_;  // a split model's expert parameters (over expt_dp)
  AdamW::Config adamw_config() const;
  LRSchedule schedule_;
  Context ctx_;
  int64_t step_ = 0;
  int64_t skipped_steps_ = 0;
  std::vector<double> step_losses_;
  std::unique_ptr<Logging> logging_;
};

// The LR schedule a TrainConfig describes (decay over train_iters unless lr_decay_iters is set).
LRSchedule lr_schedule_of(const TrainConfig& t);

}  // namespace foundry
