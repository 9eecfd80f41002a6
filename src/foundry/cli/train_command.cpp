// foundry train [RECIPE] [overrides]: builds the data (preparing raw text on first use), trains
// with periodic logs, evaluation and checkpoints, resumes from the latest checkpoint in the
// output directory when there is one, and prints a sample from the trained model.
// Under mpirun / srun with N ranks it trains data-parallel over the N processes: rank 0 prepares
// the data first (the others then load it), logs, writes checkpoints and prints the sample.
#include <cstdio>
#include <optional>

#include "foundry/cli/commands.h"
#include "foundry/cli/recipe_args.h"
#include "foundry/comm/communicator.h"
#include "foundry/core/threads.h"
#include "foundry/cli/print_generation.h"
#include "foundry/train/data_setup.h"
#include "foundry/train/parallel_checks.h"

namespace foundry::cli {

namespace {

struct TrainOptions {
  std::vector<std::string> args;
  bool print_config = false;
  std::string sample_prompt = "The ";
  int64_t sample_tokens = 80;
};

void print_sample(const Trainer& trainer, const Tokenizer& tokenizer, const TrainOptions& o) {
  if (o.sample_tokens <= 0) return;
  if (trainer.model().parallel().splits_model()) {
    std::printf("sample: skipped (the model is split over ranks; `foundry generate %s/checkpoints` samples it in "
                "one process)\n", trainer.config().train.output_dir.c_str());
    return;
  }
  std::printf("sample (temperature 0.8, top-k 40):\n");
  print_generation(trainer.model(), tokenizer, o.sample_prompt,
                   {.max_new_tokens = o.sample_tokens, .temperature = 0.8f, .top_k = 40,
                    .seed = trainer.config().train.seed});
}

void run_train(const TrainOptions& o) {
  std::string recipe;
  RunConfig cfg = load_recipe(o.args, &recipe);
  if (o.print_config) {
    std::fputs(cfg.to_yaml().c_str(), stdout);
    return;
  }
  if (cfg.train.threads > 0) set_num_threads(static_cast<int>(cfg.train.threads));
  Communicator& dp = world();
  const bool rank0 = dp.rank() == 0;
  {
    const MeshLayout layout(cfg.parallel, dp.size());  // the parallel.* sizes against the world
    check_parallelism_implemented(layout);
    check_model_parallel(resolve_gpt_config(cfg.model, /*require_vocab=*/false), layout);
  }
  // Rank 0 prepares raw text on first use (tokenizer, indexed dataset); the others wait, then
  // find it prepared.
  std::optional<TrainingData> prepared;
  if (rank0) prepared.emplace(build_training_data(cfg, stdout));
  dp.barrier();
  if (!rank0) {
    std::FILE* quiet = std::fopen("/dev/null", "w");
    prepared.emplace(build_training_data(cfg, quiet ? quiet : stdout));
    if (quiet) std::fclose(quiet);
  }
  TrainingData& data = *prepared;
  Trainer trainer(cfg, std::move(data.data), data.tokenizer, stdout, &dp);  // only rank 0 prints
  if (!rank0) {  // ranks > 0 train silently
    trainer.resume();
    if (trainer.step() < cfg.train.train_iters) trainer.train();
    return;
  }
  const TrainConfig& t = cfg.train;
  const ParameterCount count = count_parameters(trainer.model().config());
  const std::string active =
      count.active == count.total ? "" : fmt::format(" ({} active per token)", count.active);
  const MeshLayout layout(cfg.parallel, dp.size());
  const std::string ranks =
      dp.size() == 1 ? ""
      : layout.tp() == 1 && layout.ep() == 1 && layout.pp() == 1 && layout.etp() == 1
          ? fmt::format(" x {} data-parallel ranks", dp.size())
          : fmt::format(" x {} ranks (TP {}{}, EP {}, ETP {}, PP {}{}, DP {})", dp.size(), layout.tp(),
                        layout.sequence_parallel() ? " + SP" : "", layout.ep(), layout.etp(), layout.pp(),
                        layout.vpp() > 1 ? fmt::format(" x {} virtual", layout.vpp()) : "", layout.dp());
  std::printf("foundry train: recipe %s | %lld parameters%s | %d threads%s | %lld steps x %lld sequences x %lld tokens\n"
              "data: %s\noutput: %s\n",
              recipe.c_str(), static_cast<long long>(count.total), active.c_str(), num_threads(),
              ranks.c_str(), static_cast<long long>(t.train_iters),
              static_cast<long long>(t.global_batch_size > 0 ? t.global_batch_size : t.micro_batch_size * dp.size()),
              static_cast<long long>(t.seq_length), data.description.c_str(), t.output_dir.c_str());
  std::fflush(stdout);
  trainer.resume();
  if (trainer.step() >= t.train_iters) {
    std::printf("already trained to step %lld (train.train_iters); nothing to do\n", static_cast<long long>(trainer.step()));
  } else {
    trainer.train();
  }
  if (data.tokenizer) print_sample(trainer, *data.tokenizer, o);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model from a recipe (default: the built-in recipe)");
  auto o = std::make_shared<TrainOptions>();
  cmd->add_option("recipe_and_overrides", o->args, "RECIPE.yaml then section.key=value overrides");
  cmd->add_flag("--print-config", o->print_config, "Print the resolved configuration and exit");
  cmd->add_option("--sample-prompt", o->sample_prompt, "Prompt of the sample printed after training");
  cmd->add_option("--sample-tokens", o->sample_tokens, "Tokens to sample after training (0: none)");
  cmd->callback([o] { run_train(*o); });
}

}  // namespace foundry::cli
