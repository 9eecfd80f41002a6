// A rank that dies must not leave the others blocked in a collective. Mode "exit": rank 1 exits
// with code 3 (no MPI_Finalize) while the other ranks enter all_reduce; mpirun sees a process end
// without finalising and stops the job. Mode "throw": rank 1 raises a foundry::Error and handles it
// like the foundry command does (print with the rank, abort_world), so MPI_Abort stops the job.
// Driven by rank_dies.sh, which checks that mpirun fails fast and names the failure.
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "foundry/comm/communicator.h"
#include "foundry/core/check.h"

int main(int argc, char** argv) {
  const bool throw_mode = argc > 1 && std::strcmp(argv[1], "throw") == 0;
  foundry::Communicator& w = foundry::world();
  try {
    if (w.rank() == 1) {
      if (throw_mode) FOUNDRY_FAIL("rank_dies: simulated failure before all_reduce");
      std::fprintf(stderr, "rank_dies: rank 1 exits with code 3\n");
      std::fflush(stderr);
      _exit(3);  // dies like a crashed rank: no atexit handlers, no MPI_Finalize
    }
    usleep(200 * 1000);  // let rank 1 die first
    foundry::Tensor x = foundry::Tensor::zeros({16});
    w.all_reduce(x);
    std::printf("rank_dies: rank %d returned from all_reduce (should not happen)\n", w.rank());
  } catch (const foundry::Error& e) {
    std::fprintf(stderr, "foundry: error: [rank %d] %s\n", w.rank(), e.message().c_str());
    foundry::abort_world(1);
  }
  return 0;
}
