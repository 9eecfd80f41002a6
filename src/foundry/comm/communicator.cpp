// world(), make_self_communicator(), abort_world() and Communicator::all_reduce_sum.
// The world is MPI's when an MPI launcher started this process with more than one rank, detected
// from the launcher's environment before MPI is touched (so a plain `foundry train` never loads
// an MPI runtime):
//   OMPI_COMM_WORLD_SIZE   Open MPI's mpirun / prterun
//   PMI_SIZE               MPICH / Intel MPI (hydra)
//   SLURM_NTASKS           srun, when it also set PMIX_RANK or PMI_RANK (a process started by srun
//                          --mpi=pmix/pmi2, not a batch script that merely runs inside an allocation)
#include "foundry/comm/communicator.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "foundry/comm/self_communicator.h"
#include "foundry/core/check.h"
#if FOUNDRY_HAVE_MPI
#include "foundry/comm/mpi_communicator.h"
#endif

namespace foundry {
namespace {

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : 0;
}

// Number of ranks the launcher started (0 or 1: not under a multi-rank launcher).
int launcher_world_size() {
  int n = std::max(env_int("OMPI_COMM_WORLD_SIZE"), env_int("PMI_SIZE"));
  if (std::getenv("PMIX_RANK") || std::getenv("PMI_RANK")) n = std::max(n, env_int("SLURM_NTASKS"));
  return n;
}

std::atomic<bool> g_world_ready{false};

std::unique_ptr<Communicator> make_world() {
  const int launched = launcher_world_size();
  if (launched <= 1) return make_self_communicator("world");
#if FOUNDRY_HAVE_MPI
  mpi_init_funneled();
  return MpiCommunicator::world("world");
#else
  FOUNDRY_FAIL("this process was started by an MPI launcher with {} ranks, but foundry was built "
               "without MPI (install libopenmpi-dev and reconfigure)", launched);
#endif
}

}  // namespace

double Communicator::all_reduce_sum(double v) {
  // There is no f64 dtype: gather every rank's 8 bytes and add them in rank order, so every rank
  // gets the same, exactly rounded-in-order double.
  Tensor mine = Tensor::empty({8}, DType::u8);
  std::memcpy(mine.data(), &v, sizeof v);
  Tensor all = Tensor::empty({8 * static_cast<int64_t>(size())}, DType::u8);
  all_gather(mine, all);
  double sum = 0;
  for (int r = 0; r < size(); ++r) {
    double x;
    std::memcpy(&x, static_cast<const char*>(all.data()) + 8 * r, sizeof x);
    sum += x;
  }
  return sum;
}

Communicator& world() {
  // Created once, never destroyed: MPI_Finalize (atexit) releases its MPI communicator, and code
  // running in static destructors may still ask for the rank.
  static Communicator* w = [] {
    Communicator* c = make_world().release();
    g_world_ready = true;
    return c;
  }();
  return *w;
}

bool world_initialized() { return g_world_ready.load(); }

std::unique_ptr<Communicator> make_self_communicator(const std::string& name) {
  return std::make_unique<SelfCommunicator>(name);
}

void abort_world(int code) {
#if FOUNDRY_HAVE_MPI
  if (mpi_is_initialized()) mpi_abort_world(code);
#endif
  std::fflush(stdout);
  std::fflush(stderr);
  std::exit(code);
}

}  // namespace foundry
