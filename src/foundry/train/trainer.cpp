#include "foundry/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <cmath>

#include "foundry/checkpoint/checkpoint.h"
#include "foundry/core/threads.h"
#include "foundry/ops/gemm.h"
#include "foundry/train/metrics_log.h"
#include "foundry/train/model_parallel_checkpoint.h"
#include "foundry/train/parallel_checks.h"
#include "foundry/train/moe_metrics.h"
#include "foundry/train/progress.h"
#include "foundry/train/tensorboard.h"
#include "foundry/train/upcycling.h"

namespace foundry {

LRSchedule lr_schedule_of(const TrainConfig& t) {
  return {.max_lr = t.lr,
          .min_lr = t.min_lr,
          .warmup_steps = t.lr_warmup_iters,
          .decay_steps = t.lr_decay_iters > 0 ? t.lr_decay_iters : t.train_iters,
          .style = LRSchedule::parse_style(t.lr_decay_style),
          .wsd_decay_steps = t.lr_wsd_decay_iters,
          .wsd_style = LRSchedule::parse_wsd_style(t.lr_wsd_decay_style)};
}

// Everything that turns steps into output: log lines, progress bar, metrics.jsonl, TensorBoard.
// Only the logging rank (rank 0 of a data-parallel run) writes files; every rank keeps the
// interval statistics so the code path is the same.
struct Trainer::Logging {
  using clock = std::chrono::steady_clock;
  std::optional<MetricsLog> metrics;
  std::optional<TensorBoardWriter> tensorboard;
  ProgressBar progress;  // on a terminal only; log lines go through progress.print_line
  EtaEstimator eta;
  clock::time_point start = clock::now();
  clock::time_point interval_start = clock::now();
  int64_t interval_steps = 0;
  int64_t interval_tokens = 0;
  double interval_loss = 0;
  MoEIntervalStats interval_moe;  // MoE models: routing statistics of the interval's applied steps
  double peak_gflops = 0;
  double flops_per_token = 0;

  // bar: whether a progress bar may be drawn (on a terminal); mpirun hands every rank a pseudo
  // terminal, so multi-process runs print log lines only.
  Logging(const std::string& dir, int64_t total_steps, std::FILE* out, bool writes, bool bar)
      : progress(total_steps, out, ProgressBar::Options{.enabled = writes && bar ? std::nullopt : std::optional<bool>(false)}),
        eta(total_steps) {
    if (!writes) return;
    metrics.emplace(dir + "/metrics.jsonl");
    tensorboard.emplace(dir);
  }
  void append(const MetricsRecord& r) {
    if (metrics) metrics->append(r);
  }
  void scalar(const std::string& tag, double value, int64_t step) {
    if (tensorboard) tensorboard->add_scalar(tag, value, step);
  }
  void flush() {
    if (tensorboard) tensorboard->flush();
  }
};

Trainer::Trainer(const RunConfig& cfg, Data data, std::shared_ptr<const Tokenizer> tokenizer, std::FILE* log,
                 Communicator* world_group)
    : cfg_(cfg), data_(std::move(data)), tokenizer_(std::move(tokenizer)), log_(log),
      world_(world_group ? world_group : &world()) {
  FOUNDRY_CHECK(data_.train != nullptr, "Trainer: no training data");
  const MeshLayout layout(cfg_.parallel, world_->size());  // the parallel.* sizes against the world
  check_parallelism_implemented(layout);
  check_model_parallel(resolve_gpt_config(cfg_.model), layout);
  mesh_ = std::make_unique<Mesh>(layout, *world_);
  dp_ = &mesh_->dp_cp();
  const TrainConfig& tc = cfg_.train;
  const int64_t dp_size = dp_->size();
  // Megatron: global batch = micro batch x microbatches per rank x data-parallel ranks.
  global_microbatches_ = tc.global_batch_size == 0 ? dp_size : tc.global_batch_size / tc.micro_batch_size;
  FOUNDRY_CHECK(global_microbatches_ % dp_size == 0,
                "train.global_batch_size {} is not a multiple of train.micro_batch_size {} x {} data-parallel ranks",
                tc.global_batch_size, tc.micro_batch_size, dp_size);
  if (cfg_.train.threads > 0) set_num_threads(static_cast<int>(cfg_.train.threads));
  if (tokenizer_) {
    FOUNDRY_CHECK(tokenizer_->vocab_size() <= cfg_.model.vocab_size,
                  "model.vocab_size {} is smaller than the tokenizer's vocabulary ({})", cfg_.model.vocab_size,
                  tokenizer_->vocab_size());
  }
  model_ = std::make_unique<GPTModel>(cfg_.model, cfg_.train.seed, model_parallel_of(*mesh_));
  const TrainConfig& t = cfg_.train;
  const ModelParallel& mp = model_->parallel();
  if (!cfg_.train.use_distributed_optimizer) {
    optimizer_ = std::make_unique<AdamW>(model_->params(), adamw_config());
  } else if (!mp.splits_model()) {
    zero_ = std::make_unique<DistributedAdamW>(model_->params(), adamw_config(), *dp_);
  } else {  // dense parameters sharded over dp_cp, expert parameters over expt_dp
    zero_ = std::make_unique<DistributedAdamW>(model_->params(), ParamTable::Kind::dense, adamw_config(), *mp.dp);
    zero_expert_ =
        std::make_unique<DistributedAdamW>(model_->params(), ParamTable::Kind::expert, adamw_config(), *mp.expt_dp);
  }
  schedule_ = lr_schedule_of(t);
  ctx_.rng = Philox(t.seed);
}

Trainer::~Trainer() = default;

AdamW::Config Trainer::adamw_config() const {
  const TrainConfig& t = cfg_.train;
  return {.lr = t.lr, .beta1 = t.adam_beta1, .beta2 = t.adam_beta2, .eps = t.adam_eps, .weight_decay = t.weight_decay};
}

void Trainer::say(const std::string& line) {
  if (!logs()) {
    if (cfg_.train.log_all_ranks) {  // other ranks: plain lines, prefixed
      std::fprintf(log_, "[rank %d] %s\n", world_->rank(), line.c_str());
      std::fflush(log_);
    }
    return;
  }
  if (logging_) {
    logging_->progress.print_line(line);
  } else {
    std::fprintf(log_, "%s\n", line.c_str());
    std::fflush(log_);
  }
}

namespace {
// The data position and RNG a checkpoint's trainer_state records (an upcycled dense checkpoint
// converted from elsewhere may lack them: strict = false keeps the fresh run's).
void restore_position(const nlohmann::json& s, bool strict, Trainer::Data& data, Context& ctx) {
  if (strict || s.contains("consumed_samples")) data.train->seek(s.at("consumed_samples").get<int64_t>());
  if (data.valid && s.contains("valid_consumed_samples"))
    data.valid->seek(s.at("valid_consumed_samples").get<int64_t>());
  if (strict || s.contains("rng"))
    ctx.rng = Philox(s.at("rng").at("seed").get<uint64_t>(), s.at("rng").at("offset").get<uint64_t>());
}

// An upcycled checkpoint needs the MoE model section it was written with (its virtual-group
// router and scaled experts assume that routing): one error naming every key that differs.
void check_upcycled_model(const std::string& dir, const GPTConfig& model) {
  const nlohmann::json state = read_trainer_state(dir);
  if (!state.contains("upcycled_from") || !state.contains("config") || !state["config"].is_string()) return;
  const GPTConfig saved = RunConfig::parse(state["config"].get<std::string>(), dir + "/trainer_state.json").model;
  std::string diff;
  auto key = [&](const char* name, const auto& want, const auto& have) {
    if (want != have) diff += fmt::format(" model.{}={} (the recipe has {})", name, want, have);
  };
  key("num_moe_experts", saved.num_moe_experts, model.num_moe_experts);
  key("moe_ffn_hidden_size", saved.moe_ffn_hidden_size, model.moe_ffn_hidden_size);
  key("moe_router_topk", saved.moe_router_topk, model.moe_router_topk);
  key("moe_router_pre_softmax", saved.moe_router_pre_softmax, model.moe_router_pre_softmax);
  FOUNDRY_CHECK(diff.empty(), "{} is an upcycled MoE checkpoint; set the recipe's model section to match:{}", dir, diff);
}
}  // namespace

bool Trainer::resume() {
  std::string path = cfg_.train.load;
  if (path.empty()) {
    const auto latest = latest_checkpoint(checkpoint_root());
    if (!latest) {
      if (cfg_.model.upcycle_from.empty()) return false;
      upcycle_from_dense();
      return true;
    }
    path = *latest;
  }
  const std::string dir = resolve_checkpoint(path);
  if (!cfg_.model.upcycle_from.empty())  // Megatron drops --moe-use-upcycling after the first save
    say(fmt::format("model.upcycle_from={} ignored: resuming from {} instead", cfg_.model.upcycle_from, dir));
  check_upcycled_model(dir, model_->config());
  // An upcycled checkpoint (`foundry upcycle`) holds no optimizer state: AdamW starts fresh.
  const bool optimizer_state = has_optimizer_state(dir);
  // The distributed optimizer loads the replicated state (checkpoints are layout-independent) and
  // keeps its shard.
  std::unique_ptr<AdamW> full = zero_ ? std::make_unique<AdamW>(model_->params(), adamw_config()) : nullptr;
  AdamW* opt = !optimizer_state ? nullptr : zero_ ? full.get() : optimizer_.get();
  const LoadedCheckpoint ck = load_checkpoint(dir, model_->params(), opt,
                                              /*partial_model=*/model_->parallel().pp_size > 1);
  for (DistributedAdamW* z : {zero_.get(), zero_expert_.get()}) {
    if (!z) continue;
    if (!optimizer_state) {
      z->load_master_from_params();
      continue;
    }
    z->scatter_state(*full);
    z->set_steps(full->steps());
  }
  const nlohmann::json& s = ck.trainer_state;
  step_ = ck.step;
  skipped_steps_ = s.value("skipped_steps", int64_t{0});
  restore_position(s, /*strict=*/true, data_, ctx_);
  say(fmt::format("resumed from {} at step {} ({} samples consumed)", ck.dir, step_,
                  data_.train->consumed_samples()));
  if (!optimizer_state)
    say(fmt::format("{} holds no optimizer state (an upcycled checkpoint?): AdamW starts fresh, the LR schedule "
                    "from its first step", ck.dir));
  return true;
}

void Trainer::upcycle_from_dense() {
  const DenseCheckpoint dense = read_dense_checkpoint(cfg_.model.upcycle_from);
  const UpcycleOptions o = upcycle_options_for(dense.model, model_->config(), cfg_.model.upcycle_weight_scaling,
                                               cfg_.model.upcycle_scaling_split);
  // Every rank converts the blocks it holds, reading only its layers' dense tensors.
  const UpcycleScales sc = upcycle_model(*model_, o, dense_checkpoint_source(dense.dir));
  for (DistributedAdamW* z : {zero_.get(), zero_expert_.get()})
    if (z) z->load_master_from_params();
  step_ = dense.step;
  skipped_steps_ = dense.trainer_state.value("skipped_steps", int64_t{0});
  restore_position(dense.trainer_state, /*strict=*/false, data_, ctx_);
  say(fmt::format("upcycled {} (step {}) into {} experts, top-{}, granularity {}, {} router, activation scale c = {} "
                  "({} split); AdamW starts fresh; continuing at step {} ({} samples consumed)",
                  dense.dir, dense.step, o.num_experts, o.topk, o.granularity,
                  o.pre_softmax ? "softmax-then-topk" : "topk-then-softmax", sc.c, o.scaling_split, step_,
                  data_.train->consumed_samples()));
}

void Trainer::save_checkpoint() {
  nlohmann::json state = {
      {"consumed_samples", data_.train->consumed_samples()},
      {"skipped_steps", skipped_steps_},
      {"rng", {{"seed", ctx_.rng.seed()}, {"offset", ctx_.rng.offset()}}},
      {"config", cfg_.to_yaml()},
  };
  if (data_.valid) state["valid_consumed_samples"] = data_.valid->consumed_samples();
  std::unique_ptr<AdamW> full;
  if (zero_) {  // every rank takes part in gathering the sharded state
    full = std::make_unique<AdamW>(model_->params(), adamw_config());
    zero_->gather_state(*full);
    if (zero_expert_) zero_expert_->gather_state(*full);
  }
  // A split model is assembled on rank 0 first (every rank sends its owned blocks).
  FullModelState assembled;
  if (model_->parallel().splits_model()) assembled = gather_full_model(*model_, zero_ ? full.get() : optimizer_.get());
  CheckpointContents contents{.step = step_,
                              .params = assembled.model ? &assembled.model->params() : &model_->params(),
                              .optimizer = assembled.optimizer ? assembled.optimizer.get()
                                           : zero_              ? full.get()
                                                                : optimizer_.get(),
                              .trainer_state = std::move(state)};
  if (tokenizer_) contents.save_tokenizer = [this](const std::string& dir) { tokenizer_->save(dir); };
  // Rank 0 writes, the others wait for it.
  if (world_->rank() == 0) {
    const std::string dir =
        foundry::save_checkpoint(contents, checkpoint_root(), static_cast<int>(cfg_.train.save_keep_last));
    say("saved checkpoint " + dir);
  }
  world_->barrier();
}

double Trainer::evaluate() {
  FOUNDRY_CHECK(data_.valid != nullptr, "evaluate: no validation data");
  std::vector<Batch> mine;
  for (int64_t i = 0; i < cfg_.train.eval_iters; ++i) {
    // Every rank advances the source; the replica of data-parallel rank i % DP evaluates batch i.
    Batch b = data_.valid->next();
    if (i % dp_->size() == dp_->rank()) mine.push_back(std::move(b));
  }
  double sum = 0;
  for (const double loss : eval_losses(ctx_, *model_, mine)) sum += loss;
  return dp_->all_reduce_sum(sum) / static_cast<double>(cfg_.train.eval_iters);
}

void Trainer::train(int64_t until) {
  const TrainConfig& t = cfg_.train;
  if (until < 0) until = t.train_iters;
  if (!logging_) {
    logging_ = std::make_unique<Logging>(t.output_dir, t.train_iters, log_, logs(), world_->size() == 1);
    logging_->peak_gflops = gemm_peak_gflops(cfg_.model.bf16 ? DType::bf16 : DType::f32, ctx_.device, 0.25);
    logging_->flops_per_token = model_->training_flops_per_token(t.seq_length);
  }
  Logging& L = *logging_;
  const int64_t dp_size = dp_->size(), dp_rank = dp_->rank();
  while (step_ < until) {
    const float lr = schedule_.lr(optimizer_steps());
    // Every rank reads the whole global batch (the loader is cheap), keeping microbatches
    // m % DP == rank: Megatron's sampler gives rank r samples [r mbs, (r+1) mbs) of each chunk.
    std::vector<Batch> batches;
    batches.reserve(static_cast<size_t>(global_microbatches_ / dp_size));
    for (int64_t m = 0; m < global_microbatches_; ++m) {
      Batch b = data_.train->next();
      if (m % dp_size == dp_rank) batches.push_back(std::move(b));
    }
    const StepStats st = zero_expert_ ? train_step(ctx_, *model_, *zero_, *zero_expert_, batches, lr, t.clip_grad)
                         : zero_      ? train_step(ctx_, *model_, *zero_, batches, lr, t.clip_grad, *dp_)
                                      : train_step(ctx_, *model_, *optimizer_, batches, lr, t.clip_grad, dp_,
                                            {.overlap_grad_reduce = t.overlap_grad_reduce,
                                             .bucket_size = 4 * t.ddp_bucket_size});
    ++step_;
    if (!st.applied) {
      ++skipped_steps_;
      const std::string what = fmt::format("step {}: {} is not finite (loss {}, grad norm {})", step_,
                                           std::isfinite(st.loss) ? "the gradient" : "the loss", st.loss,
                                           st.grad_norm);
      FOUNDRY_CHECK(t.nan_action == "skip", "{}; stopping (train.nan_action=skip skips such steps)", what);
      say(fmt::format("{}; step skipped ({} skipped so far)", what, skipped_steps_));
    } else {
      L.interval_loss += st.loss;
      ++L.interval_steps;
      L.interval_moe.add_step(st.moe);
    }
    step_losses_.push_back(st.loss);
    L.interval_tokens += st.tokens;
    L.progress.update(step_, st.loss);
    if (step_ % t.log_interval == 0 || step_ == until || step_ == 1) log_interval_line(st, lr);
    if (data_.valid && t.eval_interval > 0 && step_ % t.eval_interval == 0) {
      const double valid = evaluate();
      say(fmt::format("step {} | validation loss {:.4f} | perplexity {:.2f}", step_, valid, std::exp(valid)));
      L.append(MetricsRecord{.step = step_}.set("valid_loss", valid));
      L.scalar("loss/valid", valid, step_);
    }
    if (t.save_interval > 0 && step_ % t.save_interval == 0 && step_ != until) save_checkpoint();
  }
  L.flush();
  save_checkpoint();
  if (step_ >= t.train_iters) L.progress.finish();
}

void Trainer::log_interval_line(const StepStats& st, float lr) {
  Logging& L = *logging_;
  const auto now = Logging::clock::now();
  const double dt = std::chrono::duration<double>(now - L.interval_start).count();
  const double elapsed = std::chrono::duration<double>(now - L.start).count();
  const double tokens_per_s = static_cast<double>(L.interval_tokens) / std::max(dt, 1e-9);
  // Every process is measured against one process's peak: the world's peak is world size times it.
  const double mfu = tokens_per_s * L.flops_per_token / (L.peak_gflops * 1e9 * static_cast<double>(world_->size()));
  const double loss = L.interval_steps > 0 ? L.interval_loss / static_cast<double>(L.interval_steps) : st.loss;
  L.eta.update(step_, elapsed);
  const auto eta = L.eta.eta_seconds();
  say(fmt::format("step {:6d}/{} | loss {:.4f} | grad norm {:.3f} | lr {:.3e} | {:.0f} tok/s | MFU {:.1f}%{} | "
                  "elapsed {} | ETA {}",
                  step_, cfg_.train.train_iters, loss, st.grad_norm, lr, tokens_per_s, 100 * mfu,
                  L.interval_moe.log_suffix(), format_duration(elapsed), eta ? format_duration(*eta) : std::string("-")));
  MetricsRecord record{.step = step_};
  record.set("loss", loss)
      .set("grad_norm", st.grad_norm)
      .set("lr", lr)
      .set("tokens_per_s", tokens_per_s)
      .set("mfu", mfu)
      .set("elapsed_s", elapsed);
  L.interval_moe.write(record);
  L.append(record);
  L.scalar("loss/train", loss, step_);
  L.scalar("grad_norm", st.grad_norm, step_);
  L.scalar("learning_rate", lr, step_);
  L.scalar("throughput/tokens_per_s", tokens_per_s, step_);
  L.scalar("throughput/mfu", mfu, step_);
  if (!L.interval_moe.empty()) {
    const MoEIntervalStats& m = L.interval_moe;
    L.scalar("moe/aux_loss", m.aux_loss(), step_);
    L.scalar("moe/z_loss", m.z_loss(), step_);
    L.scalar("moe/max_load", m.max_load(), step_);
    L.scalar("moe/dropped_frac", m.dropped_frac(), step_);
    for (size_t i = 0; i < m.layers().size(); ++i) {
      const std::vector<double> load = m.load(i);
      L.scalar(fmt::format("moe/layer_{}/max_load", m.layers()[i].layer),
                               *std::max_element(load.begin(), load.end()), step_);
      L.scalar(fmt::format("moe/layer_{}/aux_loss", m.layers()[i].layer),
                               m.layers()[i].aux_loss / static_cast<double>(L.interval_steps), step_);
    }
  }
  L.flush();
  L.interval_start = now;
  L.interval_tokens = 0;
  L.interval_loss = 0;
  L.interval_steps = 0;
  L.interval_moe.reset();
}

}  // namespace foundry
