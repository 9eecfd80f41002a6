// The foundry command: parse, build, call. Every foundry::Error is printed as one line and the
// process exits non-zero. Under mpirun, a rank that fails alone would leave the others blocked in a
// collective: the error is printed with the rank and the whole job is aborted.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "foundry/cli/commands.h"
#include "foundry/comm/communicator.h"
#include "foundry/core/check.h"

static int fail(const std::string& message) {
  if (foundry::world_initialized() && foundry::world().size() > 1) {
    std::fprintf(stderr, "foundry: error: [rank %d] %s\n", foundry::world().rank(), message.c_str());
    foundry::abort_world(1);
  }
  std::fprintf(stderr, "foundry: error: %s\n", message.c_str());
  return 1;
}

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
  foundry::cli::add_upcycle_command(app);
  foundry::cli::add_convert_command(app);
  foundry::cli::add_curate_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const foundry::Error& e) {
    return fail(e.message());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
