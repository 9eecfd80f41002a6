// foundry bench step RECIPE [overrides]: warm-up plus N training steps of the recipe's model on
// synthetic batches; prints one JSON line. MFU = achieved model FLOP/s (GPTModel's formula) /
// the GEMM peak measured in this same process (ops/gemm.h gemm_peak_gflops), times the ranks.
// One step is one global batch (train.global_batch_size, default one micro batch per data-parallel
// replica); under mpirun the ranks train it with the recipe's parallel.* layout (data parallel by
// default; tensor / expert / pipeline as foundry train does) and rank 0 prints.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

#include "foundry/cli/commands.h"
#include "foundry/cli/recipe_args.h"
#include "foundry/comm/communicator.h"
#include "foundry/core/threads.h"
#include "foundry/ops/gemm.h"
#include "foundry/train/parallel_checks.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/train/train_step.h"

namespace foundry::cli {

namespace {
void run_bench_step(const std::vector<std::string>& args, int steps, int warmup) {
  FOUNDRY_CHECK(steps > 0 && warmup >= 0, "bench step: --steps must be > 0 and --warmup >= 0");
  std::string recipe;
  RunConfig cfg = load_recipe(args, &recipe);
  if (cfg.train.threads > 0) set_num_threads(static_cast<int>(cfg.train.threads));
  const TrainConfig& t = cfg.train;
  const MeshLayout layout(cfg.parallel, world().size());
  check_parallelism_implemented(layout);
  check_model_parallel(resolve_gpt_config(cfg.model), layout);
  const Mesh mesh(layout, world());
  Communicator& dp = mesh.dp_cp();
  const int64_t global_mb = t.global_batch_size == 0 ? dp.size() : t.global_batch_size / t.micro_batch_size;
  FOUNDRY_CHECK(global_mb % dp.size() == 0,
                "bench step: train.global_batch_size {} is not a multiple of train.micro_batch_size {} x {} "
                "data-parallel ranks", t.global_batch_size, t.micro_batch_size, dp.size());
  GPTModel model(cfg.model, t.seed, model_parallel_of(mesh));
  AdamW optimizer(model.params(), {.lr = t.lr, .beta1 = t.adam_beta1, .beta2 = t.adam_beta2,
                                   .eps = t.adam_eps, .weight_decay = t.weight_decay});
  Context ctx;
  const DType gemm_dtype = cfg.model.bf16 ? DType::bf16 : DType::f32;
  const double peak_gflops = gemm_peak_gflops(gemm_dtype, ctx.device, 1.0) * world().size();
  using clock = std::chrono::steady_clock;
  std::vector<double> step_s;
  double last_loss = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    std::vector<Batch> mine;
    for (int64_t m = 0; m < global_mb; ++m)
      if (m % dp.size() == dp.rank())
        mine.push_back(synthetic_batch(t.micro_batch_size, t.seq_length, cfg.model.vocab_size, t.seed, i * global_mb + m));
    world().barrier();
    const auto t0 = clock::now();
    last_loss = train_step(ctx, model, optimizer, mine, t.lr, t.clip_grad, &dp,
                           {.overlap_grad_reduce = t.overlap_grad_reduce, .bucket_size = 4 * t.ddp_bucket_size})
                    .loss;
    if (i >= warmup) step_s.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::sort(step_s.begin(), step_s.end());
  const double median_s = step_s[step_s.size() / 2];
  const double tokens = static_cast<double>(global_mb * t.micro_batch_size * t.seq_length);
  const double model_gflops = model.training_flops_per_token(t.seq_length) * tokens / median_s / 1e9;
  if (world().rank() != 0) return;
  nlohmann::json j = {{"recipe", recipe},
                      {"tokens_per_s", tokens / median_s},
                      {"step_ms", median_s * 1e3},
                      {"mfu", model_gflops / peak_gflops},
                      {"model_gflops_per_s", model_gflops},
                      {"peak_gflops", peak_gflops},
                      {"peak_dtype", std::string(dtype_name(gemm_dtype))},
                      {"threads", num_threads()},
                      {"ranks", world().size()},
                      {"layout", fmt::format("TP {}{} EP {} ETP {} PP {}{} DP {}", layout.tp(),
                                             layout.sequence_parallel() ? "+SP" : "", layout.ep(), layout.etp(),
                                             layout.pp(), layout.vpp() > 1 ? fmt::format("x{}", layout.vpp()) : "",
                                             layout.dp())},
                      {"global_batch", global_mb * t.micro_batch_size},
                      {"steps", steps},
                      {"warmup", warmup},
                      {"loss", last_loss},
                      {"parameters", count_parameters(model.config()).total}};
  std::puts(j.dump().c_str());
}
}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  auto* step = bench->add_subcommand("step", "Time training steps of a recipe; prints one JSON line");
  auto args = std::make_shared<std::vector<std::string>>();
  auto steps = std::make_shared<int>(5);
  auto warmup = std::make_shared<int>(2);
  step->add_option("recipe_and_overrides", *args, "RECIPE.yaml then section.key=value overrides")->required();
  step->add_option("--steps", *steps, "Timed steps (the median is reported)");
  step->add_option("--warmup", *warmup, "Untimed warm-up steps");
  step->callback([args, steps, warmup] { run_bench_step(*args, *steps, *warmup); });
  add_bench_comm_command(*bench);
}

}  // namespace foundry::cli
