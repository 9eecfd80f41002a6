#include "foundry/train/train_step.h"

#include <cmath>
#include <optional>

#include "foundry/ops/loss.h"
#include "foundry/ops/optim.h"
#include "foundry/optim/grad_buckets.h"
#include "foundry/train/finalize_grads.h"
#include "foundry/train/pipeline_schedule.h"

namespace foundry {

namespace {
constexpr int32_t kIgnoreIndex = -100;  // CrossEntropyArgs' default

int64_t valid_targets(const Batch& b) {
  const int32_t* t = b.targets.ptr<int32_t>();
  int64_t n = 0;
  for (int64_t i = 0; i < b.targets.numel(); ++i) n += t[i] != kIgnoreIndex;
  return n;
}

// Sums one microbatch's MoE statistics into the step's (matched by layer: pipeline chunks report
// different layers); losses enter with weight `loss_weight`.
void accumulate_moe_stats(std::vector<MoELayerStats>& sum, const std::vector<MoELayerStats>& mb, double loss_weight) {
  for (const MoELayerStats& m : mb) {
    auto it = std::find_if(sum.begin(), sum.end(), [&](const MoELayerStats& s) { return s.layer == m.layer; });
    if (it == sum.end()) {
      MoELayerStats z = m;
      std::fill(z.tokens_per_expert.begin(), z.tokens_per_expert.end(), 0);
      z.routed = z.dropped = 0;
      z.aux_loss = z.z_loss = 0;
      it = sum.insert(std::upper_bound(sum.begin(), sum.end(), m.layer,
                                       [](int64_t l, const MoELayerStats& s) { return l < s.layer; }),
                      std::move(z));
    }
    for (size_t e = 0; e < it->tokens_per_expert.size(); ++e) it->tokens_per_expert[e] += m.tokens_per_expert[e];
    it->routed += m.routed;
    it->dropped += m.dropped;
    it->aux_loss += loss_weight * m.aux_loss;
    it->z_loss += loss_weight * m.z_loss;
  }
}
// Sums the routing statistics over the data-parallel ranks (losses: the per-rank values are
// already scaled by 1 / all microbatches, so the sum is the mean over them).
void reduce_moe_stats(std::vector<MoELayerStats>& stats, Communicator& dp) {
  for (MoELayerStats& s : stats) {
    std::vector<int64_t> n = s.tokens_per_expert;
    n.push_back(s.routed);
    n.push_back(s.dropped);
    const Tensor t = Tensor::from<int64_t>({static_cast<int64_t>(n.size())}, n);
    dp.all_reduce(t.view());
    const int64_t* r = t.ptr<int64_t>();
    const size_t E = s.tokens_per_expert.size();
    std::copy(r, r + E, s.tokens_per_expert.begin());
    s.routed = r[E];
    s.dropped = r[E + 1];
    s.aux_loss = dp.all_reduce_sum(s.aux_loss);
    s.z_loss = dp.all_reduce_sum(s.z_loss);
  }
}

// One model chunk of a pipeline-parallel step (train/pipeline_schedule.h): the first stage reads
// microbatch m's tokens, the last computes its loss (in place: the logits become dlogits, kept
// for the backward). Saved activations live from forward(m) to backward(m).
class GPTChunk final : public PipelineChunk {
 public:
  GPTChunk(Context& ctx, GPTModel& model, int chunk, std::span<const Batch> mbs, double token_count, StepStats& st,
           GPTModel::GradReadyHook last_hook = {})
      : ctx_(ctx), model_(model), v_(chunk), mbs_(mbs), token_count_(token_count), st_(st),
        saved_(mbs.size()), dlogits_(mbs.size()), last_hook_(std::move(last_hook)) {}

  Tensor forward(int m, const Tensor& input) override {
    const Batch& b = mbs_[static_cast<size_t>(m)];
    GPTModel::Saved& s = saved_[static_cast<size_t>(m)];
    Tensor out = model_.forward_chunk(ctx_, v_, model_.is_first_stage(v_) ? b.tokens : input, b.layout, s);
    if (!ctx_.training) s = GPTModel::Saved();  // evaluation: nothing kept
    if (!model_.is_last_stage(v_)) return out;
    const double loss = model_.cross_entropy(out, b.targets, token_count_, ctx_.training).loss;  // out becomes dlogits
    st_.loss += loss;
    losses_[static_cast<size_t>(m)] = loss;
    if (ctx_.training) dlogits_[static_cast<size_t>(m)] = out;
    return Tensor();
  }
  const std::vector<double>& losses() const { return losses_; }  // per microbatch; 0 off the last stage

  Tensor backward(int m, const Tensor& doutput) override {
    const size_t i = static_cast<size_t>(m);
    const Batch& b = mbs_[i];
    const bool last = i + 1 == mbs_.size() && last_hook_;  // the chunk's last backward finishes its gradients
    if (last) model_.set_grad_ready_hook(last_hook_);
    Tensor dx = model_.backward_chunk(ctx_, v_, model_.is_last_stage(v_) ? dlogits_[i] : doutput, b.layout, saved_[i]);
    if (last) model_.set_grad_ready_hook({});
    accumulate_moe_stats(st_.moe, model_.moe_stats(saved_[i]), ctx_.aux_loss_scale);
    saved_[i] = GPTModel::Saved();
    dlogits_[i] = Tensor();
    return dx;
  }

 private:
  Context& ctx_;
  GPTModel& model_;
  int v_;
  std::span<const Batch> mbs_;
  double token_count_;
  StepStats& st_;
  std::vector<GPTModel::Saved> saved_;
  std::vector<Tensor> dlogits_;
  GPTModel::GradReadyHook last_hook_;
  std::vector<double> losses_ = std::vector<double>(mbs_.size(), 0.0);  // per microbatch (last stage)
};

// Forward and backward over this rank's microbatches (through the pipeline schedule when the model
// is split into stages), the loss, token and MoE reductions; then `reduce_and_clip` (gradient
// reduction and the global norm) and `apply` (the optimizer).
template <class ReduceAndClip, class Apply>
StepStats run_step(Context& ctx, GPTModel& model, std::span<const Batch> microbatches, Communicator* dp,
                   ReduceAndClip reduce_and_clip, Apply apply, const GPTModel::GradReadyHook& last_hook = {}) {
  FOUNDRY_CHECK(!microbatches.empty(), "train_step: no microbatches");
  const ModelParallel& mp = model.parallel();
  const int dp_size = dp ? dp->size() : 1;
  double global_valid = 0;
  for (const Batch& b : microbatches) global_valid += static_cast<double>(valid_targets(b));
  if (dp) global_valid = dp->all_reduce_sum(global_valid);
  model.params().zero_grad();
  model.begin_global_batch();
  const float aux_scale_before = ctx.aux_loss_scale;
  ctx.aux_loss_scale = 1.f / static_cast<float>(microbatches.size() * static_cast<size_t>(dp_size));
  StepStats st;
  for (const Batch& b : microbatches) st.tokens += b.tokens.numel();
  // Normalised by the global batch's token count: the microbatch gradients sum to the mean.
  const double token_count = std::max(global_valid, 1.0);
  if (mp.pp_size == 1 && model.num_chunks() == 1) {
    for (const Batch& b : microbatches) {
      GPTModel::Saved saved;
      Tensor logits = model.forward(ctx, b.tokens, b.layout, saved);  // (T, V), (T, V/TP) with tp
      st.loss += model.cross_entropy(logits, b.targets, token_count, true).loss;  // logits become dlogits
      if (&b == &microbatches.back()) model.set_grad_ready_hook(last_hook);
      model.backward(ctx, logits, b.layout, saved);
      model.set_grad_ready_hook({});
      accumulate_moe_stats(st.moe, model.moe_stats(saved), ctx.aux_loss_scale);
    }
  } else {
    std::vector<std::unique_ptr<GPTChunk>> chunks;
    std::vector<PipelineChunk*> ptrs;
    for (int v = 0; v < model.num_chunks(); ++v) {
      chunks.push_back(std::make_unique<GPTChunk>(ctx, model, v, microbatches, token_count, st, last_hook));
      ptrs.push_back(chunks.back().get());
    }
    const int64_t hidden = model.config().hidden_size, split = mp.sequence_parallel ? mp.tp_size() : 1;
    PipelineConfig pc{.num_microbatches = static_cast<int>(microbatches.size()),
                      .activation_shape = [&](int m) {
                        return Shape{microbatches[static_cast<size_t>(m)].tokens.numel() / split, hidden};
                      }};
    FOUNDRY_CHECK(mp.pp != nullptr, "train_step: the model is split into pipeline stages but has no pp group");
    run_pipeline(*mp.pp, ptrs, pc);
    st.loss = mp.pp->all_reduce_sum(st.loss);  // the last stage's loss on every stage
  }
  ctx.aux_loss_scale = aux_scale_before;
  // Routing statistics: per rank's own tokens (sequence-parallel ranks route different tokens).
  Communicator* stats_group = mp.tp_dp_cp ? mp.tp_dp_cp : dp;
  if (dp && dp_size > 1) {
    st.loss = dp->all_reduce_sum(st.loss);  // each rank's loss is already over the global tokens
    st.tokens = static_cast<int64_t>(dp->all_reduce_sum(static_cast<double>(st.tokens)));
  }
  if (stats_group && stats_group->size() > 1) reduce_moe_stats(st.moe, *stats_group);
  const GradClip clip = reduce_and_clip();
  st.grad_norm = clip.norm;
  st.applied = std::isfinite(st.loss) && std::isfinite(clip.norm);  // the same on every rank
  if (st.applied) apply(clip.coefficient);
  model.finish_optimizer_step(st.applied, stats_group);
  return st;
}
}  // namespace

StepStats train_step(Context& ctx, GPTModel& model, AdamW& optimizer, std::span<const Batch> microbatches,
                     float lr, float clip_grad, Communicator* dp, const DDPConfig& ddp) {
  const ModelParallel& mp = model.parallel();
  if (mp.splits_model()) {
    FOUNDRY_CHECK(dp == nullptr || dp == mp.dp, "train_step: a model split over tensor / expert / pipeline ranks "
                  "reduces over its own data-parallel group (pass dp = nullptr)");
    dp = mp.dp;
  }
  // Overlapped data-parallel reduction: dense gradients over dp, expert ones over expt_dp (dp when
  // the model is not split), in buckets started by the last microbatch's backward.
  Communicator* edp = mp.splits_model() && mp.expt_dp ? mp.expt_dp : dp;
  std::optional<GradBuckets> dense, expert;
  GPTModel::GradReadyHook hook;
  if (ddp.overlap_grad_reduce && dp && edp && (dp->size() > 1 || edp->size() > 1)) {
    dense.emplace(model.params(), ParamTable::Kind::dense, *dp, ddp.bucket_size);
    expert.emplace(model.params(), ParamTable::Kind::expert, *edp, ddp.bucket_size);
    hook = [&](int begin, int end) {
      dense->mark_range_ready(begin, end);
      expert->mark_range_ready(begin, end);
    };
  }
  int buckets = 0, overlapped = 0;
  StepStats st = run_step(
      ctx, model, microbatches, dp,
      [&] {
        if (dense) {
          buckets = dense->num_buckets() + expert->num_buckets();
          overlapped = dense->num_started() + expert->num_started();
          dense->finish();  // waits for the buckets still in flight
          expert->finish();
        }
        if (mp.splits_model()) return finalize_model_grads(model, clip_grad, /*data_parallel_reduced=*/dense.has_value());
        if (!dense && dp && dp->size() > 1) dp->all_reduce(model.params().grad_buffer());  // sum over the replicas
        return clip_grad_norm(model.params(), clip_grad);
      },
      [&](float coefficient) { optimizer.step(lr, coefficient); }, hook);
  st.grad_buckets = buckets;
  st.grad_buckets_overlapped = overlapped;
  return st;
}

StepStats train_step(Context& ctx, GPTModel& model, DistributedAdamW& optimizer, std::span<const Batch> microbatches,
                     float lr, float clip_grad, Communicator& dp) {
  FOUNDRY_CHECK(!model.parallel().splits_model(), "train_step: the distributed optimizer (ZeRO-1) is implemented "
                "for data parallelism only, not yet for models split over tensor / expert / pipeline ranks");
  return run_step(
      ctx, model, microbatches, &dp, [&] { return optimizer.reduce_gradients(clip_grad); },  // reduce-scatter
      [&](float coefficient) { optimizer.step(lr, coefficient); });  // shard update + all-gather
}

std::vector<double> eval_losses(Context& train_ctx, const GPTModel& model, std::span<const Batch> batches) {
  Context ctx = train_ctx;
  ctx.training = false;
  const ModelParallel& mp = model.parallel();
  std::vector<double> out;
  if (batches.empty()) return out;
  if (mp.pp_size == 1 && model.num_chunks() == 1) {
    for (const Batch& b : batches) {
      GPTModel::Saved saved;
      Tensor logits = model.forward(ctx, b.tokens, b.layout, saved);
      out.push_back(model.cross_entropy(logits, b.targets, 0.0, false).loss);
    }
    return out;
  }
  // Forwards through the pipeline; the last stage's per-batch losses, summed over pp to every stage.
  std::vector<Batch> mbs(batches.begin(), batches.end());
  while (model.num_chunks() > 1 && mbs.size() % static_cast<size_t>(mp.pp_size) != 0) mbs.push_back(batches.back());
  StepStats st;
  GPTModel& m = const_cast<GPTModel&>(model);  // evaluation forwards change nothing; the chunk type takes the model
  std::vector<std::unique_ptr<GPTChunk>> chunks;
  std::vector<PipelineChunk*> ptrs;
  for (int v = 0; v < model.num_chunks(); ++v) {
    chunks.push_back(std::make_unique<GPTChunk>(ctx, m, v, mbs, 0.0, st));  // 0: each batch's own valid tokens
    ptrs.push_back(chunks.back().get());
  }
  const int64_t split = mp.sequence_parallel ? mp.tp_size() : 1;
  run_pipeline(*mp.pp, ptrs,
               {.num_microbatches = static_cast<int>(mbs.size()),
                .activation_shape = [&](int i) {
                  return Shape{mbs[static_cast<size_t>(i)].tokens.numel() / split, model.config().hidden_size};
                },
                .forward_only = true});
  std::vector<double> sum(mbs.size(), 0.0);
  for (const auto& c : chunks)
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += c->losses()[i];
  for (size_t i = 0; i < batches.size(); ++i) out.push_back(mp.pp->all_reduce_sum(sum[i]));  // f64
  return out;
}

StepStats train_step(Context& ctx, GPTModel& model, DistributedAdamW& dense, DistributedAdamW& expert,
                     std::span<const Batch> microbatches, float lr, float clip_grad) {
  const ModelParallel& mp = model.parallel();
  return run_step(
      ctx, model, microbatches, mp.dp,
      [&] {
        sum_model_parallel_grads(model);  // over tp and the embedding group; commutes with the dp sums
        dense.reduce_scatter_gradients();
        expert.reduce_scatter_gradients();
        const auto counted = [&](int i) { return counts_in_sharded_grad_norm(model, i); };
        double sq = dense.shard_sum_squares(counted) + expert.shard_sum_squares(counted);
        if (mp.all && mp.all->size() > 1) sq = mp.all->all_reduce_sum(sq);
        GradClip c;
        c.norm = std::sqrt(sq);
        c.coefficient = clip_grad > 0 ? clip_coefficient(c.norm, clip_grad) : 1.f;
        return c;
      },
      [&](float coefficient) {
        dense.step(lr, coefficient);
        expert.step(lr, coefficient);
      });
}

double eval_loss(Context& ctx, const GPTModel& model, const Batch& batch) {
  return eval_losses(ctx, model, std::span<const Batch>(&batch, 1))[0];
}

}  // namespace foundry
