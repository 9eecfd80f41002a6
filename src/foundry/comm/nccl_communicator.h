// NcclCommunicator: the Communicator over an NCCL communicator, for CUDA device tensors (host
// tensors go through MpiCommunicator). Megatron-Core's process groups use the NCCL backend of
// torch.distributed for every GPU collective (megatron/core/parallel_state.py); this is that
// backend. Compiled only when the CUDA toolkit and NCCL are found (FOUNDRY_HAVE_NCCL).
//
// Construction (make_nccl_communicator): rank 0 of an existing group (the MPI communicator of the
// same ranks) calls ncclGetUniqueId and broadcasts the id over that group as a host u8 tensor;
// every rank then calls ncclCommInitRank on its own device. One GPU per rank: NCCL rejects two
// ranks of one communicator on the same device.
//
// Streams: each communicator owns one CUDA stream, created blocking with respect to the legacy
// default stream (where foundry's kernels and copies run), so a collective sees every earlier
// kernel's writes without an explicit event. Blocking calls synchronise that stream before
// returning (the result is ready for the host and for later kernels); *_async calls record a
// cudaEvent after the operation and Request::wait() synchronises on it.
//
// Point to point: NCCL has no tags and does not carry the message size. Messages between two ranks
// match in posting order (the tag is only checked to be >= 0), and the receiver's element count must
// equal the sender's (a mismatch is undefined in NCCL: it is not detected here). send_async /
// recv_async are collected and launched together in one ncclGroupStart/End when the first of them
// is waited on (or when any other operation of this communicator is called): a rank may post sends
// and receives to both neighbours before waiting on any, as with MPI_Isend / MPI_Irecv, without the
// deadlock that launching each one alone on the single stream would cause.
//
// dtypes: all reductions run natively in NCCL (f32, bf16, f16, i8, i32, i64, u8; sum / max / min);
// other 1-byte dtypes (fp8, e8m0, bool) move as u8 and cannot be reduced; e2m1 is rejected.
//
// Every rank must create, split and destroy its NCCL communicators in the same order (NCCL's
// rule). Requests must be waited on (or dropped) before their communicator is destroyed.
#pragma once

#include <memory>
#include <string>

#include "foundry/comm/communicator.h"

namespace foundry {

// ncclComm_t, cudaStream_t and the pending point-to-point queue: kept out of this header so
// including it needs neither nccl.h nor cuda_runtime.h.
struct NcclState;

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::shared_ptr<NcclState> state);
  ~NcclCommunicator() override;

  int rank() const override;
  int size() const override;
  std::string name() const override;
  int device() const;  // the CUDA device index every tensor passed to this communicator must be on

  // Defaults as in Communicator (default arguments bind to the static type).
  void all_reduce(TensorView x, ReduceOp op = ReduceOp::sum) override;  // ncclAllReduce (in place)
  void reduce_scatter(TensorView in, TensorView out) override;          // ncclReduceScatter (sum)
  // One ncclReduce per rank r (root r, counts[r] elements) in one ncclGroupStart/End.
  void reduce_scatter_v(TensorView in, TensorView out, std::span<const int64_t> counts) override;
  void all_gather(TensorView in, TensorView out) override;              // ncclAllGather
  void all_gather_v(TensorView in, TensorView out, std::span<const int64_t> counts) override;
  void all_to_all_v(TensorView in, std::span<const int64_t> send_counts,
                    std::span<const int64_t> send_offsets, TensorView out,
                    std::span<const int64_t> recv_counts, std::span<const int64_t> recv_offsets) override;
  void broadcast(TensorView x, int root) override;                      // ncclBroadcast (in place)
  void send(TensorView x, int peer, int tag = 0) override;                 // ncclSend
  void recv(TensorView x, int peer, int tag = 0) override;                 // ncclRecv
  void barrier() override;  // a 1-element all-reduce + stream sync

  std::unique_ptr<Request> all_reduce_async(TensorView x, ReduceOp op = ReduceOp::sum) override;
  std::unique_ptr<Request> reduce_scatter_async(TensorView in, TensorView out) override;
  std::unique_ptr<Request> all_gather_async(TensorView in, TensorView out) override;
  std::unique_ptr<Request> send_async(TensorView x, int peer, int tag = 0) override;
  std::unique_ptr<Request> recv_async(TensorView x, int peer, int tag = 0) override;

  // ncclCommSplit (NCCL >= 2.18); older NCCL: the new groups' unique ids are gathered over this
  // communicator and each group calls ncclCommInitRank. Same device, a new stream.
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;

 private:
  std::shared_ptr<NcclState> state_;  // shared with the point-to-point requests in flight
};

// An NCCL communicator over the ranks of `bootstrap` (an MPI group: its broadcast of a host u8
// tensor carries the unique id), on CUDA device `device` of this process. Collective over
// `bootstrap`. `name` labels the group in errors (default: bootstrap.name()).
std::unique_ptr<NcclCommunicator> make_nccl_communicator(Communicator& bootstrap, int device,
                                                         const std::string& name = "");

}  // namespace foundry
