// foundry train: trains the recipe's model on the built-in synthetic corpus (real datasets come
// with the data pipeline) and prints one line per log interval.
#include <chrono>

#include "foundry/cli/commands.h"
#include "foundry/cli/recipe_args.h"
#include "foundry/core/threads.h"
#include "foundry/train/synthetic_data.h"
#include "foundry/train/train_step.h"

namespace foundry::cli {

namespace {
void run_train(const std::vector<std::string>& args, bool print_config) {
  std::string recipe;
  RunConfig cfg = load_recipe(args, &recipe);
  if (print_config) {
    std::fputs(cfg.to_yaml().c_str(), stdout);
    return;
  }
  if (cfg.train.threads > 0) set_num_threads(static_cast<int>(cfg.train.threads));
  const TrainConfig& t = cfg.train;
  GPTModel model(cfg.model, t.seed);
  AdamW optimizer(model.params(), {.lr = t.lr, .beta1 = t.adam_beta1, .beta2 = t.adam_beta2,
                                   .eps = t.adam_eps, .weight_decay = t.weight_decay});
  Context ctx;
  std::printf("foundry train: recipe %s, %lld parameters, %d threads, %lld steps of %lld x %lld tokens\n",
              recipe.c_str(), static_cast<long long>(model.params().numel()), num_threads(),
              static_cast<long long>(t.train_iters), static_cast<long long>(t.micro_batch_size),
              static_cast<long long>(t.seq_length));
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto interval_start = start;
  int64_t interval_tokens = 0;
  for (int64_t step = 1; step <= t.train_iters; ++step) {
    const Batch batch = synthetic_batch(t.micro_batch_size, t.seq_length, cfg.model.vocab_size, t.seed, step);
    const StepStats st = train_step(ctx, model, optimizer, std::span(&batch, 1), t.lr, t.clip_grad);
    interval_tokens += st.tokens;
    FOUNDRY_CHECK(std::isfinite(st.loss), "train: loss is {} at step {}", st.loss, step);
    if (step == 1 || step % t.log_interval == 0 || step == t.train_iters) {
      const auto now = clock::now();
      const double dt = std::chrono::duration<double>(now - interval_start).count();
      const double elapsed = std::chrono::duration<double>(now - start).count();
      std::printf("step %6lld | loss %.4f | grad norm %.3f | lr %.3g | %.0f tok/s | elapsed %.1fs\n",
                  static_cast<long long>(step), st.loss, st.grad_norm, t.lr,
                  static_cast<double>(interval_tokens) / dt, elapsed);
      std::fflush(stdout);
      interval_start = now;
      interval_tokens = 0;
    }
  }
}
}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model from a recipe (default: the built-in tiny recipe)");
  auto args = std::make_shared<std::vector<std::string>>();
  auto print_config = std::make_shared<bool>(false);
  cmd->add_option("recipe_and_overrides", *args, "RECIPE.yaml then section.key=value overrides");
  cmd->add_flag("--print-config", *print_config, "Print the resolved configuration and exit");
  cmd->callback([args, print_config] { run_train(*args, *print_config); });
}

}  // namespace foundry::cli
