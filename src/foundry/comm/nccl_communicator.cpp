// NcclCommunicator (nccl_communicator.h): each collective is the NCCL call of the same name (NCCL
// user guide, "Collective Operations" and "Point-to-point communication"; torch.distributed's
// ProcessGroupNCCL for the bootstrap, grouped all-to-all and the stream/event discipline):
//   all_reduce      ncclAllReduce (in place)          reduce_scatter  ncclReduceScatter (sum)
//   all_gather      ncclAllGather                     broadcast       ncclBroadcast (in place)
//   reduce_scatter_v  ncclReduce of rank r's chunk to root r, for every r, in one ncclGroupStart/End
//                   (NCCL has no reduce-scatter with uneven counts)
//   all_gather_v    ncclSend to every peer + ncclRecv from every peer in one ncclGroupStart/End
//                   (own block: a device copy)
//   all_to_all_v    the same with per-peer (count, offset) blocks
//   send / recv     ncclSend / ncclRecv               barrier  ncclAllReduce of one element
//   split           ncclCommSplit (NCCL >= 2.18), else unique ids gathered over this communicator
// Every enqueued operation goes on the communicator's stream; blocking calls wait for it, async
// calls record an event. Waiting polls ncclCommGetAsyncError, so a peer that died turns into an
// error (and an aborted communicator) instead of a hang.
#include "foundry/comm/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "foundry/comm/comm_checks.h"
#include "foundry/core/device.h"

namespace foundry {

namespace {

using namespace comm_detail;

// A cudaEvent recorded after an operation (once the operation is launched).
struct NcclEvent {
  cudaEvent_t ev = nullptr;
  bool recorded = false;
  ~NcclEvent() {
    if (ev != nullptr) cudaEventDestroy(ev);
  }
};

// One ncclSend / ncclRecv of a group.
struct P2p {
  bool is_send = true;
  void* data = nullptr;
  size_t count = 0;
  ncclDataType_t type = ncclUint8;
  int peer = 0;
  std::shared_ptr<NcclEvent> done;  // recorded after the group's launch (async posts only)
};

}  // namespace

struct NcclState {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  void* scratch = nullptr;  // 4 bytes on the device: the barrier's all-reduce
  int device = 0, rank = 0, size = 1;
  std::string name;
  bool failed = false;           // an asynchronous NCCL error was seen: abort, never destroy
  std::vector<P2p> pending;      // posted send_async / recv_async, not yet launched

  ~NcclState() {
    cudaSetDevice(device);
    if (comm != nullptr) {
      if (failed) {
        ncclCommAbort(comm);
      } else {
        if (stream != nullptr) cudaStreamSynchronize(stream);
        ncclCommDestroy(comm);
      }
    }
    if (scratch != nullptr) cudaFree(scratch);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }

  std::string where() const {
    return fmt::format("group '{}' (rank {} of {}, cuda:{})", name, rank, size, device);
  }

  // Throws naming the NCCL call, the group, the rank and NCCL's messages.
  void check(ncclResult_t rc, std::string_view call) const {
    if (rc == ncclSuccess) [[likely]] return;
    std::string detail;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
    const char* last = ncclGetLastError(comm);  // this thread's last NCCL message
    if (last != nullptr && last[0] != '\0') detail = fmt::format(" ({})", last);
#endif
    FOUNDRY_FAIL("{} on {} failed: {}{}", call, where(), ncclGetErrorString(rc), detail);
  }

  void check_cuda(cudaError_t rc, std::string_view call) const {
    if (rc == cudaSuccess) [[likely]] return;
    FOUNDRY_FAIL("{} on {} failed: CUDA error {}", call, where(), cudaGetErrorString(rc));
  }

  // Waits until `ev` (or, with ev == nullptr, the whole stream) has completed, checking NCCL's
  // asynchronous error state meanwhile (a dead peer, a network failure).
  void wait(cudaEvent_t ev, std::string_view call) {
    for (;;) {
      const cudaError_t q = ev != nullptr ? cudaEventQuery(ev) : cudaStreamQuery(stream);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) check_cuda(q, fmt::format("{} (waiting on the stream)", call));
      ncclResult_t async = ncclSuccess;
      check(ncclCommGetAsyncError(comm, &async), "ncclCommGetAsyncError");
      if (async != ncclSuccess && async != ncclInProgress) {
        failed = true;
        check(async, fmt::format("{} (asynchronous error)", call));
      }
      std::this_thread::yield();
    }
  }

  // Launches `ops` as one NCCL group; the group is closed even when a call in it fails.
  void launch_group(const std::vector<P2p>& ops, std::string_view op) {
    if (ops.empty()) return;
    check(ncclGroupStart(), fmt::format("ncclGroupStart ({})", op));
    ncclResult_t first = ncclSuccess;
    std::string failed_call;
    for (const P2p& p : ops) {
      const ncclResult_t rc = p.is_send ? ncclSend(p.data, p.count, p.type, p.peer, comm, stream)
                                        : ncclRecv(p.data, p.count, p.type, p.peer, comm, stream);
      if (rc != ncclSuccess) {
        first = rc;
        failed_call = fmt::format("{} ({}, peer {}, {} elements)", p.is_send ? "ncclSend" : "ncclRecv",
                                  op, p.peer, p.count);
        break;
      }
    }
    const ncclResult_t end = ncclGroupEnd();
    check(first, failed_call);
    check(end, fmt::format("ncclGroupEnd ({})", op));
  }

  // Launches the posted send_async / recv_async operations together and records their events.
  void flush() {
    if (pending.empty()) return;
    std::vector<P2p> ops;
    ops.swap(pending);
    launch_group(ops, "send_async / recv_async");
    for (P2p& p : ops) {
      check_cuda(cudaEventRecord(p.done->ev, stream), "cudaEventRecord");
      p.done->recorded = true;
    }
  }

  // Before every operation: this communicator's device current, earlier posts launched (program
  // order is the order NCCL sees on every rank).
  void begin() {
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    flush();
  }

  std::shared_ptr<NcclEvent> new_event() const {
    auto e = std::make_shared<NcclEvent>();
    check_cuda(cudaEventCreateWithFlags(&e->ev, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    return e;
  }

  std::shared_ptr<NcclEvent> record() const {
    auto e = new_event();
    check_cuda(cudaEventRecord(e->ev, stream), "cudaEventRecord");
    e->recorded = true;
    return e;
  }
};

namespace {

// An enqueued operation: wait() launches it if it is still a pending post, then waits for its event.
class NcclRequest final : public Request {
 public:
  NcclRequest(std::shared_ptr<NcclState> state, std::shared_ptr<NcclEvent> done, std::string call)
      : state_(std::move(state)), done_(std::move(done)), call_(std::move(call)) {}
  ~NcclRequest() override {
    // An abandoned request must still complete before its buffers go away.
    if (!waited_) {
      try {
        wait();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "foundry: warning: %s\n", e.what());
      }
    }
  }
  void wait() override {
    if (waited_) return;
    waited_ = true;
    state_->check_cuda(cudaSetDevice(state_->device), "cudaSetDevice");
    if (!done_->recorded) state_->flush();
    state_->wait(done_->ev, call_);
  }

 private:
  std::shared_ptr<NcclState> state_;
  std::shared_ptr<NcclEvent> done_;
  std::string call_;
  bool waited_ = false;
};

// The NCCL type that carries one element of t (bit-exact payload).
ncclDataType_t payload_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::i8: return ncclInt8;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    default: return ncclUint8;  // u8, fp8 formats, e8m0, bool (e2m1 is rejected by the checks)
  }
}

bool reducible(DType t) {
  return t == DType::f32 || t == DType::bf16 || t == DType::f16 || t == DType::i8 || t == DType::i32 ||
         t == DType::i64 || t == DType::u8;
}

void check_reducible(std::string_view op, const Communicator& c, const TensorView& t) {
  FOUNDRY_CHECK(reducible(t.dtype), "{} on group '{}': cannot reduce {} (reductions take f32, bf16, "
                "f16, i8, i32, i64, u8)", op, c.name(), t.str());
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::max: return ncclMax;
    case ReduceOp::min: return ncclMin;
    default: return ncclSum;
  }
}

// Every tensor must live on this communicator's device.
void check_device(std::string_view op, const NcclCommunicator& c, const TensorView& t, std::string_view what) {
  FOUNDRY_CHECK(t.device.is_cuda(), "{} on group '{}': {} {} is a host tensor, which the NCCL "
                "communicator does not move (use the MPI communicator for CPU tensors)", op, c.name(), what,
                t.str());
  FOUNDRY_CHECK(t.device.index == c.device(), "{} on group '{}': {} {} is not on the communicator's "
                "device cuda:{}", op, c.name(), what, t.str(), c.device());
}

size_t count_of(const TensorView& t) { return static_cast<size_t>(t.numel()); }

char* at(const TensorView& t, int64_t offset) {
  return static_cast<char*>(t.data) + offset * dtype_size(t.dtype);
}

std::shared_ptr<NcclState> make_state(ncclComm_t comm, int device, std::string name) {
  auto s = std::make_shared<NcclState>();
  s->comm = comm;  // owned from here on (destroyed with the state)
  s->device = device;
  s->name = std::move(name);
  s->check(ncclCommUserRank(comm, &s->rank), "ncclCommUserRank");
  s->check(ncclCommCount(comm, &s->size), "ncclCommCount");
  s->check_cuda(cudaSetDevice(device), "cudaSetDevice");
  // Blocking w.r.t. the legacy default stream: orders with foundry's kernels and copies.
  s->check_cuda(cudaStreamCreate(&s->stream), "cudaStreamCreate");
  s->check_cuda(cudaMalloc(&s->scratch, 4), "cudaMalloc (barrier scratch)");
  s->check_cuda(cudaMemset(s->scratch, 0, 4), "cudaMemset (barrier scratch)");
  return s;
}

// split without ncclCommSplit (NCCL < 2.18): every rank's (color, key) is gathered over the parent;
// the first member (by key, then parent rank) of each new group makes its unique id, the ids are
// gathered too, and each group calls ncclCommInitRank. Same ordering rule as MPI_Comm_split.
[[maybe_unused]] ncclComm_t split_by_unique_ids(NcclState& s, int color, int key, const std::string& name) {
  const int n = s.size;
  // Device staging: [color, key] per rank, then one unique id per rank.
  std::vector<int32_t> mine = {color, key}, all(2 * static_cast<size_t>(n));
  std::vector<ncclUniqueId> ids(static_cast<size_t>(n));
  const size_t id_bytes = sizeof(ncclUniqueId);
  void* dev = nullptr;
  s.check_cuda(cudaMalloc(&dev, (n + 1) * id_bytes), "cudaMalloc");  // the larger of the two gathers
  auto gather = [&](const void* src, void* dst, size_t bytes) {  // dst (n * bytes) on the host
    char* d = static_cast<char*>(dev);
    s.check_cuda(cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
    s.check(ncclAllGather(d, d + bytes, bytes, ncclUint8, s.comm, s.stream), "ncclAllGather (split)");
    s.wait(nullptr, "ncclAllGather (split)");
    s.check_cuda(cudaMemcpy(dst, d + bytes, n * bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  };
  gather(mine.data(), all.data(), 2 * sizeof(int32_t));
  std::vector<int> members;  // parent ranks of my new group, in the new rank order
  for (int r = 0; r < n; ++r)
    if (all[2 * r] == color) members.push_back(r);
  std::stable_sort(members.begin(), members.end(), [&](int a, int b) { return all[2 * a + 1] < all[2 * b + 1]; });
  const int new_rank = static_cast<int>(std::find(members.begin(), members.end(), s.rank) - members.begin());
  ncclUniqueId id{};
  if (new_rank == 0) s.check(ncclGetUniqueId(&id), fmt::format("ncclGetUniqueId (split into '{}')", name));
  gather(&id, ids.data(), id_bytes);
  cudaFree(dev);
  ncclComm_t sub = nullptr;
  s.check(ncclCommInitRank(&sub, static_cast<int>(members.size()), ids[members[0]], new_rank),
          fmt::format("ncclCommInitRank (split into '{}')", name));
  return sub;
}

// The three collectives with async variants: enqueue on the stream, record an event after them.
using StatePtr = std::shared_ptr<NcclState>;

std::unique_ptr<Request> start_all_reduce(std::string_view op, const NcclCommunicator& c, NcclState& s,
                                          const StatePtr& owner, TensorView x, ReduceOp red) {
  check_device(op, c, x, "x");
  check_movable(op, c, x, "x");
  check_reducible(op, c, x);
  s.begin();
  if (x.numel() > 0)
    s.check(ncclAllReduce(x.data, x.data, count_of(x), payload_type(x.dtype), nccl_op(red), s.comm, s.stream),
            "ncclAllReduce");
  return std::make_unique<NcclRequest>(owner, s.record(), "ncclAllReduce");
}

std::unique_ptr<Request> start_reduce_scatter(std::string_view op, const NcclCommunicator& c, NcclState& s,
                                              const StatePtr& owner, TensorView in, TensorView out) {
  check_device(op, c, in, "input");
  check_device(op, c, out, "output");
  check_reduce_scatter(op, c, in, out);
  check_reducible(op, c, in);
  s.begin();
  if (out.numel() > 0)
    s.check(ncclReduceScatter(in.data, out.data, count_of(out), payload_type(in.dtype), ncclSum, s.comm,
                              s.stream), "ncclReduceScatter");
  return std::make_unique<NcclRequest>(owner, s.record(), "ncclReduceScatter");
}

std::unique_ptr<Request> start_all_gather(std::string_view op, const NcclCommunicator& c, NcclState& s,
                                          const StatePtr& owner, TensorView in, TensorView out) {
  check_device(op, c, in, "input");
  check_device(op, c, out, "output");
  check_all_gather(op, c, in, out);
  s.begin();
  if (in.numel() > 0)
    s.check(ncclAllGather(in.data, out.data, count_of(in), payload_type(in.dtype), s.comm, s.stream),
            "ncclAllGather");
  return std::make_unique<NcclRequest>(owner, s.record(), "ncclAllGather");
}

}  // namespace

// ---- communicator -------------------------------------------------------------------------

NcclCommunicator::NcclCommunicator(std::shared_ptr<NcclState> state) : state_(std::move(state)) {}

NcclCommunicator::~NcclCommunicator() = default;

int NcclCommunicator::rank() const { return state_->rank; }
int NcclCommunicator::size() const { return state_->size; }
std::string NcclCommunicator::name() const { return state_->name; }
int NcclCommunicator::device() const { return state_->device; }

void NcclCommunicator::all_reduce(TensorView x, ReduceOp op) {
  start_all_reduce("all_reduce", *this, *state_, state_, x, op)->wait();
}

void NcclCommunicator::reduce_scatter(TensorView in, TensorView out) {
  start_reduce_scatter("reduce_scatter", *this, *state_, state_, in, out)->wait();
}

void NcclCommunicator::reduce_scatter_v(TensorView in, TensorView out, std::span<const int64_t> counts) {
  check_device("reduce_scatter_v", *this, in, "input");
  check_device("reduce_scatter_v", *this, out, "output");
  check_reduce_scatter_v("reduce_scatter_v", *this, in, out, counts);
  check_reducible("reduce_scatter_v", *this, in);
  NcclState& s = *state_;
  s.begin();
  const ncclDataType_t t = payload_type(in.dtype);
  s.check(ncclGroupStart(), "ncclGroupStart (reduce_scatter_v)");
  ncclResult_t first = ncclSuccess;
  int failed_root = -1;
  int64_t offset = 0;
  for (int r = 0; r < s.size && first == ncclSuccess; ++r) {
    // recvbuff is used on the root only.
    if (counts[r] > 0) {
      first = ncclReduce(at(in, offset), out.data, static_cast<size_t>(counts[r]), t, ncclSum, r, s.comm, s.stream);
      if (first != ncclSuccess) failed_root = r;
    }
    offset += counts[r];
  }
  const ncclResult_t end = ncclGroupEnd();  // closed even when a call in it failed
  if (first != ncclSuccess)
    s.check(first, fmt::format("ncclReduce (reduce_scatter_v, root {}, {} elements)", failed_root,
                               counts[failed_root]));
  s.check(end, "ncclGroupEnd (reduce_scatter_v)");
  s.wait(nullptr, "reduce_scatter_v");
}

void NcclCommunicator::all_gather(TensorView in, TensorView out) {
  start_all_gather("all_gather", *this, *state_, state_, in, out)->wait();
}

void NcclCommunicator::all_gather_v(TensorView in, TensorView out, std::span<const int64_t> counts) {
  check_device("all_gather_v", *this, in, "input");
  check_device("all_gather_v", *this, out, "output");
  check_all_gather_v("all_gather_v", *this, in, out, counts);
  NcclState& s = *state_;
  s.begin();
  const ncclDataType_t t = payload_type(in.dtype);
  std::vector<P2p> ops;
  int64_t offset = 0;
  for (int p = 0; p < s.size; ++p) {
    if (p == s.rank) {
      if (counts[p] > 0)
        s.check_cuda(cudaMemcpyAsync(at(out, offset), in.data, count_of(in) * dtype_size(in.dtype),
                                     cudaMemcpyDeviceToDevice, s.stream), "cudaMemcpyAsync (all_gather_v)");
    } else {
      if (counts[s.rank] > 0) ops.push_back({true, in.data, count_of(in), t, p, nullptr});
      if (counts[p] > 0) ops.push_back({false, at(out, offset), static_cast<size_t>(counts[p]), t, p, nullptr});
    }
    offset += counts[p];
  }
  s.launch_group(ops, "all_gather_v");
  s.wait(nullptr, "all_gather_v");
}

void NcclCommunicator::all_to_all_v(TensorView in, std::span<const int64_t> send_counts,
                                    std::span<const int64_t> send_offsets, TensorView out,
                                    std::span<const int64_t> recv_counts,
                                    std::span<const int64_t> recv_offsets) {
  check_device("all_to_all_v", *this, in, "input");
  check_device("all_to_all_v", *this, out, "output");
  check_all_to_all_v("all_to_all_v", *this, in, send_counts, send_offsets, out, recv_counts, recv_offsets);
  NcclState& s = *state_;
  const int me = s.rank;
  FOUNDRY_CHECK(send_counts[me] == recv_counts[me], "all_to_all_v on group '{}': rank {} sends {} "
                "elements to itself but expects to receive {}", s.name, me, send_counts[me], recv_counts[me]);
  s.begin();
  const ncclDataType_t t = payload_type(in.dtype);
  if (send_counts[me] > 0)
    s.check_cuda(cudaMemcpyAsync(at(out, recv_offsets[me]), at(in, send_offsets[me]),
                                 static_cast<size_t>(send_counts[me] * dtype_size(in.dtype)),
                                 cudaMemcpyDeviceToDevice, s.stream), "cudaMemcpyAsync (all_to_all_v)");
  std::vector<P2p> ops;
  for (int p = 0; p < s.size; ++p) {
    if (p == me) continue;
    if (send_counts[p] > 0)
      ops.push_back({true, at(in, send_offsets[p]), static_cast<size_t>(send_counts[p]), t, p, nullptr});
    if (recv_counts[p] > 0)
      ops.push_back({false, at(out, recv_offsets[p]), static_cast<size_t>(recv_counts[p]), t, p, nullptr});
  }
  s.launch_group(ops, "all_to_all_v");
  s.wait(nullptr, "all_to_all_v");
}

void NcclCommunicator::broadcast(TensorView x, int root) {
  check_device("broadcast", *this, x, "x");
  check_movable("broadcast", *this, x, "x");
  check_root("broadcast", *this, root);
  NcclState& s = *state_;
  s.begin();
  if (x.numel() > 0)
    s.check(ncclBroadcast(x.data, x.data, count_of(x), payload_type(x.dtype), root, s.comm, s.stream),
            "ncclBroadcast");
  s.wait(nullptr, "ncclBroadcast");
}

void NcclCommunicator::send(TensorView x, int peer, int tag) {
  check_device("send", *this, x, "x");
  check_movable("send", *this, x, "x");
  check_peer("send", *this, peer);
  FOUNDRY_CHECK(tag >= 0, "send on group '{}': tag {} must be >= 0", name(), tag);
  NcclState& s = *state_;
  s.begin();
  if (x.numel() > 0)
    s.check(ncclSend(x.data, count_of(x), payload_type(x.dtype), peer, s.comm, s.stream), "ncclSend");
  s.wait(nullptr, "ncclSend");
}

void NcclCommunicator::recv(TensorView x, int peer, int tag) {
  check_device("recv", *this, x, "x");
  check_movable("recv", *this, x, "x");
  check_peer("recv", *this, peer);
  FOUNDRY_CHECK(tag >= 0, "recv on group '{}': tag {} must be >= 0", name(), tag);
  NcclState& s = *state_;
  s.begin();
  if (x.numel() > 0)
    s.check(ncclRecv(x.data, count_of(x), payload_type(x.dtype), peer, s.comm, s.stream), "ncclRecv");
  s.wait(nullptr, "ncclRecv");
}

void NcclCommunicator::barrier() {
  NcclState& s = *state_;
  s.begin();
  s.check(ncclAllReduce(s.scratch, s.scratch, 1, ncclInt32, ncclSum, s.comm, s.stream), "ncclAllReduce (barrier)");
  s.wait(nullptr, "barrier");
}

std::unique_ptr<Request> NcclCommunicator::all_reduce_async(TensorView x, ReduceOp op) {
  return start_all_reduce("all_reduce_async", *this, *state_, state_, x, op);
}

std::unique_ptr<Request> NcclCommunicator::reduce_scatter_async(TensorView in, TensorView out) {
  return start_reduce_scatter("reduce_scatter_async", *this, *state_, state_, in, out);
}

std::unique_ptr<Request> NcclCommunicator::all_gather_async(TensorView in, TensorView out) {
  return start_all_gather("all_gather_async", *this, *state_, state_, in, out);
}

std::unique_ptr<Request> NcclCommunicator::send_async(TensorView x, int peer, int tag) {
  check_device("send_async", *this, x, "x");
  check_movable("send_async", *this, x, "x");
  check_peer("send_async", *this, peer);
  FOUNDRY_CHECK(tag >= 0, "send_async on group '{}': tag {} must be >= 0", name(), tag);
  NcclState& s = *state_;
  s.check_cuda(cudaSetDevice(s.device), "cudaSetDevice");
  auto done = s.new_event();
  if (x.numel() > 0) {
    s.pending.push_back({true, x.data, count_of(x), payload_type(x.dtype), peer, done});
  } else {
    s.check_cuda(cudaEventRecord(done->ev, s.stream), "cudaEventRecord");
    done->recorded = true;
  }
  return std::make_unique<NcclRequest>(state_, std::move(done), "ncclSend (send_async)");
}

std::unique_ptr<Request> NcclCommunicator::recv_async(TensorView x, int peer, int tag) {
  check_device("recv_async", *this, x, "x");
  check_movable("recv_async", *this, x, "x");
  check_peer("recv_async", *this, peer);
  FOUNDRY_CHECK(tag >= 0, "recv_async on group '{}': tag {} must be >= 0", name(), tag);
  NcclState& s = *state_;
  s.check_cuda(cudaSetDevice(s.device), "cudaSetDevice");
  auto done = s.new_event();
  if (x.numel() > 0) {
    s.pending.push_back({false, x.data, count_of(x), payload_type(x.dtype), peer, done});
  } else {
    s.check_cuda(cudaEventRecord(done->ev, s.stream), "cudaEventRecord");
    done->recorded = true;
  }
  return std::make_unique<NcclRequest>(state_, std::move(done), "ncclRecv (recv_async)");
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key, const std::string& name) {
  FOUNDRY_CHECK(color >= 0, "split of group '{}' into '{}': color {} must be >= 0", state_->name, name, color);
  NcclState& s = *state_;
  s.begin();
  s.wait(nullptr, "split");
  ncclComm_t sub = nullptr;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 18, 0)
  s.check(ncclCommSplit(s.comm, color, key, &sub, nullptr), fmt::format("ncclCommSplit (into '{}')", name));
#else
  sub = split_by_unique_ids(s, color, key, name);
#endif
  return std::make_unique<NcclCommunicator>(make_state(sub, s.device, name));
}

std::unique_ptr<NcclCommunicator> make_nccl_communicator(Communicator& bootstrap, int device,
                                                         const std::string& name) {
  const std::string group = name.empty() ? bootstrap.name() : name;
  const int rank = bootstrap.rank(), size = bootstrap.size();
  // Every rank must have its device before any rank starts NCCL (a lone failure would leave the
  // others blocked in the bootstrap): agree on it first.
  const int visible = cuda_device_count();
  const bool ok = device >= 0 && device < visible;
  Tensor all_ok = Tensor::empty({1}, DType::i32);
  all_ok.ptr<int32_t>()[0] = ok ? 1 : 0;
  bootstrap.all_reduce(all_ok, ReduceOp::min);
  FOUNDRY_CHECK(ok, "make_nccl_communicator for group '{}' (rank {} of {}): CUDA device {} is not present "
                "({} visible)", group, rank, size, device, visible);
  FOUNDRY_CHECK(all_ok.ptr<int32_t>()[0] == 1, "make_nccl_communicator for group '{}' (rank {} of {}): "
                "another rank has no CUDA device for its NCCL communicator", group, rank, size);

  // Rank 0's unique id (and whether ncclGetUniqueId succeeded) for everyone.
  FOUNDRY_CHECK(cudaSetDevice(device) == cudaSuccess, "make_nccl_communicator for group '{}' (rank {} of "
                "{}): cudaSetDevice({}) failed", group, rank, size, device);
  Tensor msg = Tensor::zeros({static_cast<int64_t>(sizeof(ncclUniqueId)) + 1}, DType::u8);
  ncclResult_t id_rc = ncclSuccess;
  if (rank == 0) {
    ncclUniqueId id{};
    id_rc = ncclGetUniqueId(&id);
    msg.ptr<uint8_t>()[0] = id_rc == ncclSuccess ? 1 : 0;
    std::memcpy(msg.ptr<uint8_t>() + 1, &id, sizeof(id));
  }
  bootstrap.broadcast(msg, 0);
  FOUNDRY_CHECK(msg.ptr<uint8_t>()[0] == 1, "ncclGetUniqueId on group '{}' (rank 0 of {}) failed: {}", group,
                size, rank == 0 ? ncclGetErrorString(id_rc) : "see rank 0's error");
  ncclUniqueId id{};
  std::memcpy(&id, msg.ptr<uint8_t>() + 1, sizeof(id));

  ncclComm_t comm = nullptr;
  const ncclResult_t rc = ncclCommInitRank(&comm, size, id, rank);
  FOUNDRY_CHECK(rc == ncclSuccess, "ncclCommInitRank on group '{}' (rank {} of {}, cuda:{}) failed: {}", group,
                rank, size, device, ncclGetErrorString(rc));
  return std::make_unique<NcclCommunicator>(make_state(comm, device, group));
}

}  // namespace foundry
