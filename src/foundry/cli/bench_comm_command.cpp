// foundry bench comm RECIPE [overrides] [--steps N]: the bytes each collective moves per training
// step of the recipe's data-parallel layout (run it under mpirun), counted by a
// CountingCommunicator around the world, next to the analytic formula for the layout:
//   replicated (DDP):  all_reduce  = the gradient buffer, 4 x sum over parameters of numel
//                      (each rounded up to 64 bytes: the arena layout), once per step
//   ZeRO-1:            reduce_scatter = all_gather = 4 x DP x S, S = the shard (the arena padded
//                      to a multiple of DP, 16-element aligned), once per step each
//   scalars:           all_reduce_sum (an all_gather of 8 bytes per rank): valid tokens, loss,
//                      tokens, per MoE layer its aux and z loss (ZeRO-1: the gradient norm's sum of
//                      squares too); per MoE layer an i64
//                      all_reduce of E + 2 routing counts, and with the expert bias an f32 all_reduce
//                      of E counts
// Prints one JSON line on rank 0 with, per collective: calls, bytes and ring "bus bytes" per
// step and rank, the analytic bytes, and whether they agree.
#include <nlohmann/json.hpp>

#include "foundry/cli/commands.h"
#include "foundry/cli/recipe_args.h"
#include "foundry/comm/counting_communicator.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/train/train_step.h"

namespace foundry::cli {

namespace {

void run_bench_comm(const std::vector<std::string>& args, int steps) {
  FOUNDRY_CHECK(steps > 0, "bench comm: --steps must be > 0");
  std::string recipe;
  const RunConfig cfg = load_recipe(args, &recipe);
  const TrainConfig& t = cfg.train;
  CountingCommunicator dp(world());
  const int64_t n = dp.size();
  const int64_t global_mb = t.global_batch_size == 0 ? n : t.global_batch_size / t.micro_batch_size;
  FOUNDRY_CHECK(global_mb % n == 0, "bench comm: train.global_batch_size {} is not a multiple of {} x {} ranks",
                t.global_batch_size, t.micro_batch_size, n);
  GPTModel model(cfg.model, t.seed);
  const AdamW::Config adam{.lr = t.lr, .beta1 = t.adam_beta1, .beta2 = t.adam_beta2, .eps = t.adam_eps,
                           .weight_decay = t.weight_decay};
  std::unique_ptr<AdamW> replicated;
  std::unique_ptr<DistributedAdamW> zero;
  if (t.use_distributed_optimizer) zero = std::make_unique<DistributedAdamW>(model.params(), adam, dp);
  else replicated = std::make_unique<AdamW>(model.params(), adam);
  Context ctx;
  for (int i = 0; i < steps + 1; ++i) {
    if (i == 1) dp.reset();  // the first step is a warm-up (and builds nothing extra)
    std::vector<Batch> mine;
    for (int64_t m = 0; m < global_mb; ++m)
      if (m % n == dp.rank())
        mine.push_back(synthetic_batch(t.micro_batch_size, t.seq_length, cfg.model.vocab_size, t.seed, i * global_mb + m));
    if (zero) train_step(ctx, model, *zero, mine, t.lr, t.clip_grad, dp);
    else train_step(ctx, model, *replicated, mine, t.lr, t.clip_grad, &dp);
  }
  // The analytic bytes per step for this layout.
  std::map<std::string, double> analytic;
  const double grad_bytes = static_cast<double>(model.params().grad_buffer().nbytes());
  if (n > 1) {
    if (zero) {
      analytic["reduce_scatter"] = 4.0 * static_cast<double>(n * zero->shard_size());
      analytic["all_gather"] = 4.0 * static_cast<double>(n * zero->shard_size());
    } else {
      analytic["all_reduce"] = grad_bytes;
    }
    const int64_t E = cfg.model.num_moe_experts;
    const double moe_layers = static_cast<double>(model.moe_layers().size());
    // all_reduce_sum scalars (ZeRO-1 adds the gradient norm's sum of squares).
    analytic["all_gather"] += 8.0 * static_cast<double>(n) * (3 + 2 * moe_layers + (zero ? 1 : 0));
    analytic["all_reduce"] += moe_layers * 8.0 * static_cast<double>(E + 2);
    if (cfg.model.moe_router_enable_expert_bias) analytic["all_reduce"] += moe_layers * 4.0 * static_cast<double>(E);
  }
  nlohmann::json out = {{"recipe", recipe},
                        {"ranks", n},
                        {"optimizer", zero ? "distributed (ZeRO-1)" : "replicated"},
                        {"parameters", model.params().numel()},
                        {"gradient_buffer_bytes", grad_bytes},
                        {"steps", steps}};
  bool all_match = true;
  for (const auto& [name, tally] : dp.tally()) {
    const double per_step = tally.bytes / steps;
    const double expect = analytic.count(name) ? analytic[name] : 0.0;
    const bool match = std::abs(per_step - expect) <= 1e-9 * std::max(1.0, expect);
    all_match = all_match && match;
    out["collectives"][name] = {{"calls_per_step", static_cast<double>(tally.calls) / steps},
                                {"bytes_per_step", per_step},
                                {"bus_bytes_per_step", tally.bus_bytes / steps},
                                {"analytic_bytes_per_step", expect},
                                {"matches", match}};
  }
  for (const auto& [name, bytes] : analytic)
    if (!dp.tally().count(name) && bytes > 0) all_match = false;
  out["matches_analytic"] = all_match;
  if (dp.rank() == 0) std::puts(out.dump().c_str());
}

}  // namespace

void add_bench_comm_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("comm", "Bytes moved per step by each collective vs the layout's formula "
                                           "(run under mpirun); prints one JSON line");
  auto args = std::make_shared<std::vector<std::string>>();
  auto steps = std::make_shared<int>(2);
  cmd->add_option("recipe_and_overrides", *args, "RECIPE.yaml then section.key=value overrides")->required();
  cmd->add_option("--steps", *steps, "Counted steps (after one warm-up step)");
  cmd->callback([args, steps] { run_bench_comm(*args, *steps); });
}

}  // namespace foundry::cli
