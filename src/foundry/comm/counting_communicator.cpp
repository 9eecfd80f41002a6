#include "foundry/comm/counting_communicator.h"

#include "foundry/core/check.h"

namespace foundry {

CountingCommunicator::CountingCommunicator(Communicator& inner)
    : inner_(inner), store_(std::make_shared<GroupTally>()), group_(inner.name()) {
  (*store_)[group_];
}

CountingCommunicator::CountingCommunicator(std::unique_ptr<Communicator> inner, std::shared_ptr<GroupTally> store,
                                           std::string group)
    : owned_(std::move(inner)), inner_(*owned_), store_(std::move(store)), group_(std::move(group)) {
  FOUNDRY_CHECK(store_ != nullptr, "CountingCommunicator '{}': no tally store", group_);
  (*store_)[group_];
}

void CountingCommunicator::reset() {
  for (auto& [group, tally] : *store_) tally.clear();
}

void CountingCommunicator::add(const std::string& what, double bytes, double bus_bytes) {
  CollectiveTally& t = (*store_)[group_][what];
  ++t.calls;
  t.bytes += bytes;
  t.bus_bytes += bus_bytes;
}

void CountingCommunicator::all_reduce(TensorView x, ReduceOp op) {
  add("all_reduce", static_cast<double>(x.nbytes()), 2 * ring(static_cast<double>(x.nbytes())));
  inner_.all_reduce(x, op);
}

void CountingCommunicator::reduce_scatter(TensorView in, TensorView out) {
  add("reduce_scatter", static_cast<double>(in.nbytes()), ring(static_cast<double>(in.nbytes())));
  inner_.reduce_scatter(in, out);
}

void CountingCommunicator::reduce_scatter_v(TensorView in, TensorView out, std::span<const int64_t> counts) {
  add("reduce_scatter_v", static_cast<double>(in.nbytes()), static_cast<double>(in.nbytes() - out.nbytes()));
  inner_.reduce_scatter_v(in, out, counts);
}

void CountingCommunicator::all_gather(TensorView in, TensorView out) {
  add("all_gather", static_cast<double>(out.nbytes()), ring(static_cast<double>(out.nbytes())));
  inner_.all_gather(in, out);
}

void CountingCommunicator::all_gather_v(TensorView in, TensorView out, std::span<const int64_t> counts) {
  add("all_gather_v", static_cast<double>(out.nbytes()), static_cast<double>(out.nbytes() - in.nbytes()));
  inner_.all_gather_v(in, out, counts);
}

void CountingCommunicator::all_to_all_v(TensorView in, std::span<const int64_t> send_counts,
                                        std::span<const int64_t> send_offsets, TensorView out,
                                        std::span<const int64_t> recv_counts, std::span<const int64_t> recv_offsets) {
  const double element = in.numel() > 0 ? static_cast<double>(in.nbytes()) / static_cast<double>(in.numel()) : 0.0;
  double sent = 0, to_others = 0;
  for (size_t r = 0; r < send_counts.size(); ++r) {
    sent += static_cast<double>(send_counts[r]) * element;
    if (static_cast<int>(r) != rank()) to_others += static_cast<double>(send_counts[r]) * element;
  }
  add("all_to_all_v", sent, to_others);
  inner_.all_to_all_v(in, send_counts, send_offsets, out, recv_counts, recv_offsets);
}

void CountingCommunicator::broadcast(TensorView x, int root) {
  add("broadcast", static_cast<double>(x.nbytes()), static_cast<double>(x.nbytes()));
  inner_.broadcast(x, root);
}

void CountingCommunicator::send(TensorView x, int peer, int tag) {
  add("send", static_cast<double>(x.nbytes()), static_cast<double>(x.nbytes()));
  inner_.send(x, peer, tag);
}

void CountingCommunicator::recv(TensorView x, int peer, int tag) {
  add("recv", static_cast<double>(x.nbytes()), static_cast<double>(x.nbytes()));
  inner_.recv(x, peer, tag);
}

void CountingCommunicator::barrier() { inner_.barrier(); }

std::unique_ptr<Request> CountingCommunicator::all_reduce_async(TensorView x, ReduceOp op) {
  add("all_reduce", static_cast<double>(x.nbytes()), 2 * ring(static_cast<double>(x.nbytes())));
  return inner_.all_reduce_async(x, op);
}

std::unique_ptr<Request> CountingCommunicator::reduce_scatter_async(TensorView in, TensorView out) {
  add("reduce_scatter", static_cast<double>(in.nbytes()), ring(static_cast<double>(in.nbytes())));
  return inner_.reduce_scatter_async(in, out);
}

std::unique_ptr<Request> CountingCommunicator::all_gather_async(TensorView in, TensorView out) {
  add("all_gather", static_cast<double>(out.nbytes()), ring(static_cast<double>(out.nbytes())));
  return inner_.all_gather_async(in, out);
}

std::unique_ptr<Request> CountingCommunicator::send_async(TensorView x, int peer, int tag) {
  add("send", static_cast<double>(x.nbytes()), static_cast<double>(x.nbytes()));
  return inner_.send_async(x, peer, tag);
}

std::unique_ptr<Request> CountingCommunicator::recv_async(TensorView x, int peer, int tag) {
  add("recv", static_cast<double>(x.nbytes()), static_cast<double>(x.nbytes()));
  return inner_.recv_async(x, peer, tag);
}

std::unique_ptr<Communicator> CountingCommunicator::split(int color, int key, const std::string& name) {
  return std::make_unique<CountingCommunicator>(inner_.split(color, key, name), store_, name);
}

}  // namespace foundry
