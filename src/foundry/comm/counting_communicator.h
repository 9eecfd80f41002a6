// CountingCommunicator: forwards every collective to another communicator and tallies, per
// collective, the calls and the payload bytes this rank hands to it (`foundry bench comm`):
//   all_reduce, broadcast, send, recv     bytes of x
//   reduce_scatter, reduce_scatter_v      bytes of the input (every rank's chunk)
//   all_gather, all_gather_v              bytes of the output (every rank's part)
//   all_to_all_v                          bytes this rank sends
// plus the bytes a ring implementation moves through each rank's link ("bus bytes", the NCCL
// tests convention, n = group size): all_reduce 2 (n-1)/n x bytes, reduce_scatter and all_gather
// (n-1)/n x bytes, all_gather_v and reduce_scatter_v the other ranks' parts / chunks (bytes minus
// this rank's; (n-1)/n x bytes when the counts are equal), all_to_all_v the bytes sent to other
// ranks, point-to-point the bytes.
// Sub-groups are counted too: `split` returns a CountingCommunicator around the inner split that
// tallies into the same store under its group name (the Mesh names its groups "tp", "dp_cp",
// "ep", "expt_dp", "pp", "embd", ...: comm/mesh.h), so `groups()` reports per (group, collective)
// for this communicator (under its own name, "world" for the world) and every group split from it.
// Groups of the same name on one rank share a tally. reset() clears every group's tally.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "foundry/comm/communicator.h"

namespace foundry {

struct CollectiveTally {
  int64_t calls = 0;
  double bytes = 0;      // payload, as above
  double bus_bytes = 0;  // moved through this rank's link by a ring algorithm
};

class CountingCommunicator final : public Communicator {
 public:
  using Tally = std::map<std::string, CollectiveTally>;  // collective -> tally
  using GroupTally = std::map<std::string, Tally>;       // group name -> its collectives

  explicit CountingCommunicator(Communicator& inner);
  // A sub-group: owns its inner communicator, tallies into `store` under `group`.
  CountingCommunicator(std::unique_ptr<Communicator> inner, std::shared_ptr<GroupTally> store, std::string group);

  const Tally& tally() const { return store_->at(group_); }  // this group's collectives
  const GroupTally& groups() const { return *store_; }        // this group's and every sub-group's
  const std::string& group() const { return group_; }
  void reset();

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string name() const override { return inner_.name(); }
  void all_reduce(TensorView x, ReduceOp op) override;
  void reduce_scatter(TensorView in, TensorView out) override;
  void reduce_scatter_v(TensorView in, TensorView out, std::span<const int64_t> counts) override;
  void all_gather(TensorView in, TensorView out) override;
  void all_gather_v(TensorView in, TensorView out, std::span<const int64_t> counts) override;
  void all_to_all_v(TensorView in, std::span<const int64_t> send_counts, std::span<const int64_t> send_offsets,
                    TensorView out, std::span<const int64_t> recv_counts,
                    std::span<const int64_t> recv_offsets) override;
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
  void add(const std::string& what, double bytes, double bus_bytes);
  double ring(double bytes) const { return size() > 1 ? bytes * (size() - 1) / size() : 0.0; }
  std::unique_ptr<Communicator> owned_;  // a sub-group's inner communicator
  Communicator& inner_;
  std::shared_ptr<GroupTally> store_;
  std::string group_;
};

}  // namespace foundry
