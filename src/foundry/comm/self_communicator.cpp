// SelfCommunicator (self_communicator.h): collectives over a group of one rank.
// With size 1: all_reduce(x) = x, reduce_scatter(_v)(in) = in, all_gather(in) = in, all_to_all_v moves
// in[send_offsets[0], + send_counts[0]) to out[recv_offsets[0], + recv_counts[0]).
#include "foundry/comm/self_communicator.h"

#include <cstring>

#include "foundry/comm/comm_checks.h"

namespace foundry {
namespace {

using namespace comm_detail;

// Copies n elements from src (element offset so) to dst (element offset do); device memory is
// not addressable here.
void copy_elements(std::string_view op, const Communicator& c, const TensorView& src, int64_t so,
                   const TensorView& dst, int64_t dof, int64_t n) {
  FOUNDRY_CHECK(src.device.is_cpu() && dst.device.is_cpu(), "{} on group '{}': {} -> {}: the self "
                "communicator copies CPU tensors only", op, c.name(), src.str(), dst.str());
  if (n == 0) return;
  const int64_t es = dtype_size(src.dtype);
  std::memmove(static_cast<char*>(dst.data) + dof * es, static_cast<const char*>(src.data) + so * es,
               static_cast<size_t>(n * es));
}

struct DoneRequest final : Request {
  void wait() override {}
};

}  // namespace

void SelfCommunicator::all_reduce(TensorView x, ReduceOp) { check_movable("all_reduce", *this, x, "x"); }

void SelfCommunicator::reduce_scatter(TensorView in, TensorView out) {
  check_reduce_scatter("reduce_scatter", *this, in, out);
  copy_elements("reduce_scatter", *this, in, 0, out, 0, out.numel());
}

void SelfCommunicator::reduce_scatter_v(TensorView in, TensorView out, std::span<const int64_t> counts) {
  check_reduce_scatter_v("reduce_scatter_v", *this, in, out, counts);
  copy_elements("reduce_scatter_v", *this, in, 0, out, 0, out.numel());
}

void SelfCommunicator::all_gather(TensorView in, TensorView out) {
  check_all_gather("all_gather", *this, in, out);
  copy_elements("all_gather", *this, in, 0, out, 0, in.numel());
}

void SelfCommunicator::all_gather_v(TensorView in, TensorView out, std::span<const int64_t> counts) {
  check_all_gather_v("all_gather_v", *this, in, out, counts);
  copy_elements("all_gather_v", *this, in, 0, out, 0, in.numel());
}

void SelfCommunicator::all_to_all_v(TensorView in, std::span<const int64_t> send_counts,
                                    std::span<const int64_t> send_offsets, TensorView out,
                                    std::span<const int64_t> recv_counts,
                                    std::span<const int64_t> recv_offsets) {
  check_all_to_all_v("all_to_all_v", *this, in, send_counts, send_offsets, out, recv_counts, recv_offsets);
  FOUNDRY_CHECK(send_counts[0] == recv_counts[0], "all_to_all_v on group '{}': sends {} elements to "
                "itself but expects to receive {}", name_, send_counts[0], recv_counts[0]);
  copy_elements("all_to_all_v", *this, in, send_offsets[0], out, recv_offsets[0], send_counts[0]);
}

void SelfCommunicator::broadcast(TensorView x, int root) {
  check_movable("broadcast", *this, x, "x");
  check_root("broadcast", *this, root);
}

void SelfCommunicator::send(TensorView x, int peer, int tag) { check_peer("send", *this, peer); }
void SelfCommunicator::recv(TensorView x, int peer, int tag) { check_peer("recv", *this, peer); }

std::unique_ptr<Request> SelfCommunicator::send_async(TensorView x, int peer, int tag) {
  send(x, peer, tag);
  return std::make_unique<DoneRequest>();
}
std::unique_ptr<Request> SelfCommunicator::recv_async(TensorView x, int peer, int tag) {
  recv(x, peer, tag);
  return std::make_unique<DoneRequest>();
}

std::unique_ptr<Request> SelfCommunicator::all_reduce_async(TensorView x, ReduceOp op) {
  all_reduce(x, op);
  return std::make_unique<DoneRequest>();
}
std::unique_ptr<Request> SelfCommunicator::reduce_scatter_async(TensorView in, TensorView out) {
  reduce_scatter(in, out);
  return std::make_unique<DoneRequest>();
}
std::unique_ptr<Request> SelfCommunicator::all_gather_async(TensorView in, TensorView out) {
  all_gather(in, out);
  return std::make_unique<DoneRequest>();
}

std::unique_ptr<Communicator> SelfCommunicator::split(int color, int key, const std::string& name) {
  return std::make_unique<SelfCommunicator>(name);
}

}  // namespace foundry
