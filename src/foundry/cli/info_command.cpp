// foundry info: what this build has and what the machine reaches.
#include "foundry/cli/commands.h"
#include "foundry/core/threads.h"
#include "foundry/ops/gemm.h"

namespace foundry::cli {

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show the build's features, threads and measured GEMM peak");
  cmd->callback([] {
    std::printf("foundry %s\n", FOUNDRY_VERSION);
    std::printf("threads: %d\n", num_threads());
    std::printf("cpu GEMM peak f32:  %.1f GFLOP/s\n", gemm_peak_gflops(DType::f32, Device::cpu(), 0.5));
    std::printf("cpu GEMM peak bf16: %.1f GFLOP/s\n", gemm_peak_gflops(DType::bf16, Device::cpu(), 0.5));
  });
}

}  // namespace foundry::cli
