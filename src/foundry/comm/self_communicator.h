// SelfCommunicator: a group of one rank (the world of a process started without mpirun). Every
// collective over one rank is the identity: all_reduce and broadcast leave x as it is, reduce_scatter(_v),
// all_gather(_v) and all_to_all_v copy input to output (after the same argument checks as the MPI
// communicator, so single-process runs catch shape bugs too). send/recv would address this rank
// itself and are errors; split returns another group of one.
#pragma once

#include <string>

#include "foundry/comm/communicator.h"

namespace foundry {

class SelfCommunicator final : public Communicator {
 public:
  explicit SelfCommunicator(std::string name) : name_(std::move(name)) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
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
  std::unique_ptr<Request> send_async(TensorView x, int peer, int tag) override;
  std::unique_ptr<Request> recv_async(TensorView x, int peer, int tag) override;
  void barrier() override {}

  std::unique_ptr<Request> all_reduce_async(TensorView x, ReduceOp op) override;
  std::unique_ptr<Request> reduce_scatter_async(TensorView in, TensorView out) override;
  std::unique_ptr<Request> all_gather_async(TensorView in, TensorView out) override;

  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;

 private:
  std::string name_;
};

}  // namespace foundry
