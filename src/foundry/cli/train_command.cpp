// foundry train [RECIPE] [overrides]: builds the data (preparing raw text on first use), trains
// with periodic logs, evaluation and checkpoints, resumes from the latest checkpoint in the
// output directory when there is one, and prints a sample from the trained model.
#include <cstdio>

#include "foundry/cli/commands.h"
#include "foundry/cli/recipe_args.h"
#include "foundry/core/threads.h"
#include "foundry/cli/print_generation.h"
#include "foundry/train/data_setup.h"

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
  TrainingData data = build_training_data(cfg, stdout);
  Trainer trainer(cfg, std::move(data.data), data.tokenizer);
  const TrainConfig& t = cfg.train;
  const ParameterCount count = count_parameters(trainer.model().config());
  const std::string active =
      count.active == count.total ? "" : fmt::format(" ({} active per token)", count.active);
  std::printf("foundry train: recipe %s | %lld parameters%s | %d threads | %lld steps x %lld sequences x %lld tokens\n"
              "data: %s\noutput: %s\n",
              recipe.c_str(), static_cast<long long>(trainer.model().params().numel()), active.c_str(), num_threads(),
              static_cast<long long>(t.train_iters), static_cast<long long>(t.micro_batch_size * t.num_microbatches()),
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
