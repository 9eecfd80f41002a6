// MpiCommunicator: the Communicator over an MPI communicator, for CPU tensors (device tensors go
// through the NCCL communicator). Owns its MPI_Comm (a dup of MPI_COMM_WORLD or the result of
// MPI_Comm_split) with MPI_ERRORS_RETURN set, so every failing call becomes a foundry::Error naming
// the collective, the group and MPI's error string.
//
// dtypes: f32, i8, i32, i64, u8 natively; bf16 and f16 move as 16-bit payloads (gather, scatter,
// all-to-all, broadcast, send/recv) and are reduced by converting to f32, reducing in f32 and
// rounding once back to 16 bits (more accurate than a bf16 user op that rounds at every step;
// costs one f32 buffer and twice the bytes on the wire). Other 1-byte dtypes (fp8, bool) move as u8
// and cannot be reduced. Element counts must fit in an int (MPI's count type); larger calls throw.
#pragma once

#include <string>

#include "foundry/comm/communicator.h"

namespace foundry {

// MPI_Comm is an int in MPICH and a pointer in Open MPI: keep mpi.h out of this header.
struct MpiCommHandle;

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of the communicator in `handle` (freed in the destructor while MPI is live).
  MpiCommunicator(std::unique_ptr<MpiCommHandle> handle, std::string name);
  ~MpiCommunicator() override;

  // A communicator over a dup of MPI_COMM_WORLD (MPI must be initialised).
  static std::unique_ptr<MpiCommunicator> world(const std::string& name = "world");

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return name_; }

  void all_reduce(TensorView x, ReduceOp op) override;
  void reduce_scatter(TensorView in, TensorView out) override;
  void reduce_scatter_v(TensorView in, TensorView out, std::span<const int64_t> counts) override;
  void all_gather(TensorView in, TensorView out) override;
  void all_gather_v(TensorView in, TensorView out, std::span<const int64_t> counts) override;
  void all_to_all_v(TensorView in, std::span<const int64_t> send_counts,
                    std::span<const int64_t> send_offsets, TensorView out,
                    std::span<const int64_t> recv_counts, std::span<const int64_t> recv_offsets) override;
  void broadcast(TensorView x, int root) override;
  void send(TensorView x, int peer, int tag) override;
  void recv(TensorView x, int peer, int tag) override;
  void barrier() override;

  std::unique_ptr<Request> all_reduce_async(TensorView x, ReduceOp op) override;
  std::unique_ptr<Request> reduce_scatter_async(TensorView in, TensorView out) override;
  std::unique_ptr<Request> all_gather_async(TensorView in, TensorView out) override;
  std::unique_ptr<Request> send_async(TensorView x, int peer, int tag) override;
  std::unique_ptr<Request> recv_async(TensorView x, int peer, int tag) override;

  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;

 private:
  std::unique_ptr<MpiCommHandle> comm_;
  std::string name_;
  int rank_ = 0;
  int size_ = 1;
};

// MPI process state, for world() and abort_world().
bool mpi_is_initialized();                 // MPI_Init done and MPI_Finalize not yet
void mpi_init_funneled();                  // MPI_Init_thread(FUNNELED); MPI_Finalize registered atexit
[[noreturn]] void mpi_abort_world(int code);

}  // namespace foundry
