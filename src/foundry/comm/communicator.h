// Communicator: the collectives every multi-process feature is written against (Megatron-Core's
// torch.distributed process groups). One object per group of ranks; `split` makes sub-groups.
// Implementations: comm/mpi_communicator (MPI, CPU tensors) and, when the CUDA toolkit is present,
// comm/nccl_communicator (NCCL, device tensors, bootstrapped over MPI). A world of one process
// (no mpirun) is a SelfCommunicator, so single-process code paths need no special cases.
//
// Semantics (every rank of the group calls the same collective in the same order):
//   all_reduce      x = op over ranks of x                          (in place)
//   reduce_scatter  out = chunk `rank` of (sum over ranks of in)     in (size * n), out (n)
//   reduce_scatter_v  the same with uneven chunks: in (sum_r counts[r]) holds rank r's chunk at
//                   offset counts[0] + .. + counts[r-1]; out (counts[rank]) = the sum over ranks of
//                   this rank's chunk (Megatron's reduce_scatter_to_sequence_parallel_region with
//                   input_split_sizes)
//   all_gather      out = concat over ranks of in                    in (n), out (size * n)
//   all_gather_v    out = concat over ranks of in_r, counts[r] = numel of rank r's input
//   all_to_all_v    rank r sends in[send_offsets[s] .. + send_counts[s]) to rank s and receives
//                   recv_counts[s] elements from rank s at recv_offsets[s]   (counts in elements)
//   broadcast       x = root's x
//   send / recv     point to point, matched by (peer, tag)
// Tensors are contiguous; element counts and dtypes must agree across ranks (not checked remotely).
// Async variants return a Request; wait() completes it (the buffers must stay alive until then).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "foundry/core/tensor.h"

namespace foundry {

enum class ReduceOp { sum, max, min };

class Request {
 public:
  virtual ~Request() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // e.g. "world", "dp", for error messages

  virtual void all_reduce(TensorView x, ReduceOp op = ReduceOp::sum) = 0;
  virtual void reduce_scatter(TensorView in, TensorView out) = 0;  // sum
  virtual void reduce_scatter_v(TensorView in, TensorView out, std::span<const int64_t> counts) = 0;  // sum
  virtual void all_gather(TensorView in, TensorView out) = 0;
  virtual void all_gather_v(TensorView in, TensorView out, std::span<const int64_t> counts) = 0;
  virtual void all_to_all_v(TensorView in, std::span<const int64_t> send_counts,
                            std::span<const int64_t> send_offsets, TensorView out,
                            std::span<const int64_t> recv_counts, std::span<const int64_t> recv_offsets) = 0;
  virtual void broadcast(TensorView x, int root) = 0;
  virtual void send(TensorView x, int peer, int tag = 0) = 0;
  virtual void recv(TensorView x, int peer, int tag = 0) = 0;
  virtual void barrier() = 0;

  // Asynchronous variants (overlap with compute).
  virtual std::unique_ptr<Request> all_reduce_async(TensorView x, ReduceOp op = ReduceOp::sum) = 0;
  virtual std::unique_ptr<Request> reduce_scatter_async(TensorView in, TensorView out) = 0;
  virtual std::unique_ptr<Request> all_gather_async(TensorView in, TensorView out) = 0;
  // Point-to-point without blocking (pipeline stages exchange activations in both directions at
  // once): the buffer must stay alive and untouched until wait().
  virtual std::unique_ptr<Request> send_async(TensorView x, int peer, int tag = 0) = 0;
  virtual std::unique_ptr<Request> recv_async(TensorView x, int peer, int tag = 0) = 0;

  // Sub-groups: ranks with the same color form one group, ordered by key (then by rank). Every
  // rank of this group must call split. `name` labels the new group.
  virtual std::unique_ptr<Communicator> split(int color, int key, const std::string& name) = 0;

  // Convenience: sum of a host double over the group (losses, token counts).
  double all_reduce_sum(double v);
};

// The world: MPI_COMM_WORLD when the process was started by mpirun / srun with more than one rank
// (MPI is initialised on first use and finalised at exit), else a SelfCommunicator of size 1.
Communicator& world();

// A group of one rank (collectives are copies or no-ops).
std::unique_ptr<Communicator> make_self_communicator(const std::string& name = "self");

// True once world() has been created (lets an error handler ask for the rank without starting MPI).
bool world_initialized();

// Ends the process after an error that only some ranks may have seen: MPI_Abort(MPI_COMM_WORLD,
// code) when MPI is initialised (mpirun then stops every rank instead of leaving them blocked in a
// collective), else std::exit(code).
[[noreturn]] void abort_world(int code);

}  // namespace foundry
