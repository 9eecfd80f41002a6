// The foundry command: parse, build, call. Every foundry::Error is printed as one line and the
// process exits non-zero.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "foundry/cli/commands.h"
#include "foundry/core/check.h"

int main(int argc, char** argv) {
  CLI::App app{"foundry: train foundation models (Megatron-Core semantics) on CPU and GPU"};
  app.require_subcommand(1);
  foundry::cli::add_train_command(app);
  foundry::cli::add_bench_command(app);
  foundry::cli::add_info_command(app);
  foundry::cli::add_preprocess_command(app);
  foundry::cli::add_plot_command(app);
  foundry::cli::add_tokenizer_command(app);
  foundry::cli::add_eval_command(app);
  foundry::cli::add_generate_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const foundry::Error& e) {
    std::fprintf(stderr, "foundry: error: %s\n", e.message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "foundry: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
