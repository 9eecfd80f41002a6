// MpiCommunicator (mpi_communicator.h): each collective is the MPI call of the same name
// (MPI-3.1 standard, ch. 5 and 6):
//   all_reduce      MPI_Allreduce(MPI_IN_PLACE)        reduce_scatter  MPI_Reduce_scatter_block (sum)
//   reduce_scatter_v  MPI_Reduce_scatter (sum, recvcounts = counts)
//   all_gather      MPI_Allgather                      all_gather_v    MPI_Allgatherv
//   all_to_all_v    MPI_Alltoallv                      broadcast       MPI_Bcast
//   send / recv     MPI_Send / MPI_Recv (received count checked)       split  MPI_Comm_split
//   async           MPI_Iallreduce / MPI_Ireduce_scatter_block / MPI_Iallgather / MPI_Isend /
//                   MPI_Irecv (received count checked) + MPI_Wait
// bf16/f16 reductions go through an f32 copy (sum in f32, one rounding back). Open MPI progresses a
// non-blocking collective only inside MPI calls, so overlap with compute is partial; results are
// exact either way.
#define OMPI_SKIP_MPICXX 1  // the C API only (no deprecated C++ bindings)
#define MPICH_SKIP_MPICXX 1
#include "foundry/comm/mpi_communicator.h"

#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "foundry/comm/comm_checks.h"

namespace foundry {

struct MpiCommHandle {
  MPI_Comm comm = MPI_COMM_NULL;
};

namespace {

using namespace comm_detail;

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return fmt::format("MPI error {}", code);
  return std::string(buf, static_cast<size_t>(len));
}

// Throws naming the MPI call, the group and MPI's message when rc is not MPI_SUCCESS.
void check_mpi(int rc, std::string_view call, const std::string& group, int rank, int size) {
  if (rc == MPI_SUCCESS) [[likely]] return;
  FOUNDRY_FAIL("{} on group '{}' (rank {} of {}) failed: {}", call, group, rank, size, mpi_error_string(rc));
}

void check_cpu(std::string_view op, const Communicator& c, const TensorView& t) {
  FOUNDRY_CHECK(t.device.is_cpu(), "{} on group '{}': device tensor {} is not supported by the MPI "
                "communicator (use NCCL)", op, c.name(), t.str());
}

// MPI counts and displacements are ints.
int to_count(std::string_view op, const Communicator& c, int64_t n, std::string_view what) {
  FOUNDRY_CHECK(n >= 0 && n <= INT_MAX, "{} on group '{}': {} = {} elements exceeds MPI's int count "
                "limit ({}); split the call", op, c.name(), what, n, INT_MAX);
  return static_cast<int>(n);
}

// The MPI type that carries one element of t (bit-exact payload).
MPI_Datatype payload_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::bf16: case DType::f16: return MPI_UINT16_T;
    case DType::i8: return MPI_INT8_T;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    default: return MPI_UINT8_T;  // u8, fp8 formats, e8m0, bool (e2m1 is rejected by the checks)
  }
}

bool reduces_natively(DType t) {
  return t == DType::f32 || t == DType::i8 || t == DType::i32 || t == DType::i64 || t == DType::u8;
}
bool reduces_via_f32(DType t) { return t == DType::bf16 || t == DType::f16; }

void check_reducible(std::string_view op, const Communicator& c, const TensorView& t) {
  FOUNDRY_CHECK(reduces_natively(t.dtype) || reduces_via_f32(t.dtype), "{} on group '{}': cannot reduce "
                "{} (reductions take f32, bf16, f16, i8, i32, i64, u8)", op, c.name(), t.str());
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
    default: return MPI_SUM;
  }
}

// bf16/f16 <-> f32 for reductions.
std::vector<float> widen(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  const auto* h = static_cast<const uint16_t*>(t.data);
  if (t.dtype == DType::bf16)
    for (size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_f32(h[i]);
  else
    for (size_t i = 0; i < out.size(); ++i) out[i] = f16_to_f32(h[i]);
  return out;
}
void narrow(const float* src, const TensorView& t) {
  auto* h = static_cast<uint16_t*>(t.data);
  const int64_t n = t.numel();
  if (t.dtype == DType::bf16)
    for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
  else
    for (int64_t i = 0; i < n; ++i) h[i] = f32_to_f16(src[i]);
}

// A started non-blocking collective. `finish` runs after completion (rounding f32 results back to
// bf16/f16); `buffers` keeps the f32 staging memory alive until then.
class MpiRequest final : public Request {
 public:
  MpiRequest(std::string call, std::string group, int rank, int size)
      : call_(std::move(call)), group_(std::move(group)), rank_(rank), size_(size) {}
  ~MpiRequest() override {
    // An abandoned request must still complete before its buffers go away.
    if (!done_ && mpi_is_initialized()) {
      try {
        wait();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "foundry: warning: %s\n", e.what());
      }
    }
  }
  void wait() override {
    if (done_) return;
    done_ = true;
    check_mpi(MPI_Wait(&req, &status), call_ + " (MPI_Wait)", group_, rank_, size_);
    if (finish) finish();
  }

  MPI_Request req = MPI_REQUEST_NULL;
  MPI_Status status{};
  std::vector<std::vector<float>> buffers;
  std::function<void()> finish;

 private:
  std::string call_, group_;
  int rank_, size_;
  bool done_ = false;
};

void finalize_at_exit() {
  if (mpi_is_initialized()) MPI_Finalize();
}

}  // namespace

// ---- process state ------------------------------------------------------------------------

bool mpi_is_initialized() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

void mpi_init_funneled() {
  int init = 0;
  MPI_Initialized(&init);
  if (!init) {
    int provided = 0;
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    FOUNDRY_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed: {}", mpi_error_string(rc));
    FOUNDRY_CHECK(provided >= MPI_THREAD_FUNNELED, "MPI_Init_thread: the MPI library provides thread "
                  "level {} but foundry needs MPI_THREAD_FUNNELED", provided);
    // At exit, after main returned (so after every collective of this process).
    std::atexit(finalize_at_exit);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

void mpi_abort_world(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; keep [[noreturn]] honest
}

// ---- communicator -------------------------------------------------------------------------

MpiCommunicator::MpiCommunicator(std::unique_ptr<MpiCommHandle> handle, std::string name)
    : comm_(std::move(handle)), name_(std::move(name)) {
  MPI_Comm_set_errhandler(comm_->comm, MPI_ERRORS_RETURN);
  MPI_Comm_set_name(comm_->comm, name_.c_str());
  check_mpi(MPI_Comm_rank(comm_->comm, &rank_), "MPI_Comm_rank", name_, 0, 0);
  check_mpi(MPI_Comm_size(comm_->comm, &size_), "MPI_Comm_size", name_, rank_, 0);
}

MpiCommunicator::~MpiCommunicator() {
  if (comm_ && comm_->comm != MPI_COMM_NULL && mpi_is_initialized()) MPI_Comm_free(&comm_->comm);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::world(const std::string& name) {
  FOUNDRY_CHECK(mpi_is_initialized(), "MpiCommunicator::world: MPI is not initialised");
  auto h = std::make_unique<MpiCommHandle>();
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &h->comm), "MPI_Comm_dup", "MPI_COMM_WORLD", 0, 0);
  return std::make_unique<MpiCommunicator>(std::move(h), name);
}

#define CHECKED_MPI(call, ...) check_mpi(call(__VA_ARGS__), #call, name_, rank_, size_)

void MpiCommunicator::all_reduce(TensorView x, ReduceOp op) {
  check_cpu("all_reduce", *this, x);
  check_movable("all_reduce", *this, x, "x");
  check_reducible("all_reduce", *this, x);
  const int n = to_count("all_reduce", *this, x.numel(), "numel(x)");
  if (reduces_natively(x.dtype)) {
    CHECKED_MPI(MPI_Allreduce, MPI_IN_PLACE, x.data, n, payload_type(x.dtype), mpi_op(op), comm_->comm);
    return;
  }
  std::vector<float> buf = widen(x);
  CHECKED_MPI(MPI_Allreduce, MPI_IN_PLACE, buf.data(), n, MPI_FLOAT, mpi_op(op), comm_->comm);
  narrow(buf.data(), x);
}

void MpiCommunicator::reduce_scatter(TensorView in, TensorView out) {
  check_cpu("reduce_scatter", *this, in);
  check_cpu("reduce_scatter", *this, out);
  check_reduce_scatter("reduce_scatter", *this, in, out);
  check_reducible("reduce_scatter", *this, in);
  to_count("reduce_scatter", *this, in.numel(), "numel(in)");
  const int n = to_count("reduce_scatter", *this, out.numel(), "numel(out)");
  if (reduces_natively(in.dtype)) {
    CHECKED_MPI(MPI_Reduce_scatter_block, in.data, out.data, n, payload_type(in.dtype), MPI_SUM, comm_->comm);
    return;
  }
  std::vector<float> fin = widen(in), fout(static_cast<size_t>(n));
  CHECKED_MPI(MPI_Reduce_scatter_block, fin.data(), fout.data(), n, MPI_FLOAT, MPI_SUM, comm_->comm);
  narrow(fout.data(), out);
}

void MpiCommunicator::reduce_scatter_v(TensorView in, TensorView out, std::span<const int64_t> counts) {
  check_cpu("reduce_scatter_v", *this, in);
  check_cpu("reduce_scatter_v", *this, out);
  check_reduce_scatter_v("reduce_scatter_v", *this, in, out, counts);
  check_reducible("reduce_scatter_v", *this, in);
  to_count("reduce_scatter_v", *this, in.numel(), "numel(in) = sum(counts)");
  std::vector<int> cnt(static_cast<size_t>(size_));  // MPI's recvcounts
  for (int r = 0; r < size_; ++r)
    cnt[static_cast<size_t>(r)] = to_count("reduce_scatter_v", *this, counts[r], fmt::format("counts[{}]", r));
  if (reduces_natively(in.dtype)) {
    CHECKED_MPI(MPI_Reduce_scatter, in.data, out.data, cnt.data(), payload_type(in.dtype), MPI_SUM, comm_->comm);
    return;
  }
  std::vector<float> fin = widen(in), fout(static_cast<size_t>(out.numel()));
  CHECKED_MPI(MPI_Reduce_scatter, fin.data(), fout.data(), cnt.data(), MPI_FLOAT, MPI_SUM, comm_->comm);
  narrow(fout.data(), out);
}

void MpiCommunicator::all_gather(TensorView in, TensorView out) {
  check_cpu("all_gather", *this, in);
  check_cpu("all_gather", *this, out);
  check_all_gather("all_gather", *this, in, out);
  to_count("all_gather", *this, out.numel(), "numel(out)");
  const int n = to_count("all_gather", *this, in.numel(), "numel(in)");
  const MPI_Datatype t = payload_type(in.dtype);
  CHECKED_MPI(MPI_Allgather, in.data, n, t, out.data, n, t, comm_->comm);
}

void MpiCommunicator::all_gather_v(TensorView in, TensorView out, std::span<const int64_t> counts) {
  check_cpu("all_gather_v", *this, in);
  check_cpu("all_gather_v", *this, out);
  check_all_gather_v("all_gather_v", *this, in, out, counts);
  to_count("all_gather_v", *this, out.numel(), "numel(out)");
  std::vector<int> cnt(static_cast<size_t>(size_)), displ(static_cast<size_t>(size_));
  int64_t offset = 0;
  for (int r = 0; r < size_; ++r) {
    cnt[r] = static_cast<int>(counts[r]);
    displ[r] = static_cast<int>(offset);
    offset += counts[r];
  }
  const MPI_Datatype t = payload_type(in.dtype);
  CHECKED_MPI(MPI_Allgatherv, in.data, cnt[rank_], t, out.data, cnt.data(), displ.data(), t, comm_->comm);
}

void MpiCommunicator::all_to_all_v(TensorView in, std::span<const int64_t> send_counts,
                                   std::span<const int64_t> send_offsets, TensorView out,
                                   std::span<const int64_t> recv_counts,
                                   std::span<const int64_t> recv_offsets) {
  check_cpu("all_to_all_v", *this, in);
  check_cpu("all_to_all_v", *this, out);
  check_all_to_all_v("all_to_all_v", *this, in, send_counts, send_offsets, out, recv_counts, recv_offsets);
  to_count("all_to_all_v", *this, in.numel(), "numel(in)");
  to_count("all_to_all_v", *this, out.numel(), "numel(out)");
  std::vector<int> sc(size_), sd(size_), rc(size_), rd(size_);
  for (int r = 0; r < size_; ++r) {  // bounded by the buffer sizes checked above
    sc[r] = static_cast<int>(send_counts[r]);
    sd[r] = static_cast<int>(send_offsets[r]);
    rc[r] = static_cast<int>(recv_counts[r]);
    rd[r] = static_cast<int>(recv_offsets[r]);
  }
  const MPI_Datatype t = payload_type(in.dtype);
  CHECKED_MPI(MPI_Alltoallv, in.data, sc.data(), sd.data(), t, out.data, rc.data(), rd.data(), t, comm_->comm);
}

void MpiCommunicator::broadcast(TensorView x, int root) {
  check_cpu("broadcast", *this, x);
  check_movable("broadcast", *this, x, "x");
  check_root("broadcast", *this, root);
  const int n = to_count("broadcast", *this, x.numel(), "numel(x)");
  CHECKED_MPI(MPI_Bcast, x.data, n, payload_type(x.dtype), root, comm_->comm);
}

void MpiCommunicator::send(TensorView x, int peer, int tag) {
  check_cpu("send", *this, x);
  check_movable("send", *this, x, "x");
  check_peer("send", *this, peer);
  FOUNDRY_CHECK(tag >= 0, "send on group '{}': tag {} must be >= 0", name_, tag);
  const int n = to_count("send", *this, x.numel(), "numel(x)");
  CHECKED_MPI(MPI_Send, x.data, n, payload_type(x.dtype), peer, tag, comm_->comm);
}

void MpiCommunicator::recv(TensorView x, int peer, int tag) {
  check_cpu("recv", *this, x);
  check_movable("recv", *this, x, "x");
  check_peer("recv", *this, peer);
  FOUNDRY_CHECK(tag >= 0, "recv on group '{}': tag {} must be >= 0", name_, tag);
  const int n = to_count("recv", *this, x.numel(), "numel(x)");
  const MPI_Datatype t = payload_type(x.dtype);
  MPI_Status status;
  CHECKED_MPI(MPI_Recv, x.data, n, t, peer, tag, comm_->comm, &status);
  int got = 0;
  CHECKED_MPI(MPI_Get_count, &status, t, &got);
  FOUNDRY_CHECK(got == n, "recv on group '{}' (rank {}): expected {} elements from rank {} (tag {}) into {} "
                "but received {}", name_, rank_, n, peer, tag, x.str(), got);
}

void MpiCommunicator::barrier() { CHECKED_MPI(MPI_Barrier, comm_->comm); }

std::unique_ptr<Request> MpiCommunicator::send_async(TensorView x, int peer, int tag) {
  check_cpu("send_async", *this, x);
  check_movable("send_async", *this, x, "x");
  check_peer("send_async", *this, peer);
  const int n = to_count("send_async", *this, x.numel(), "numel(x)");
  auto r = std::make_unique<MpiRequest>("MPI_Isend", name_, rank_, size_);
  CHECKED_MPI(MPI_Isend, x.data, n, payload_type(x.dtype), peer, tag, comm_->comm, &r->req);
  return r;
}

std::unique_ptr<Request> MpiCommunicator::recv_async(TensorView x, int peer, int tag) {
  check_cpu("recv_async", *this, x);
  check_movable("recv_async", *this, x, "x");
  check_peer("recv_async", *this, peer);
  const int n = to_count("recv_async", *this, x.numel(), "numel(x)");
  const MPI_Datatype t = payload_type(x.dtype);
  auto r = std::make_unique<MpiRequest>("MPI_Irecv", name_, rank_, size_);
  CHECKED_MPI(MPI_Irecv, x.data, n, t, peer, tag, comm_->comm, &r->req);
  MpiRequest* raw = r.get();
  r->finish = [raw, n, t, peer, tag, shape = x.shape, group = name_, rank = rank_] {
    int got = 0;
    MPI_Get_count(&raw->status, t, &got);
    FOUNDRY_CHECK(got == n, "recv_async on group '{}' (rank {}): expected {} elements from rank {} (tag {}) into {}, "
                  "got {}", group, rank, n, peer, tag, shape.str(), got);
  };
  return r;
}

std::unique_ptr<Request> MpiCommunicator::all_reduce_async(TensorView x, ReduceOp op) {
  check_cpu("all_reduce_async", *this, x);
  check_movable("all_reduce_async", *this, x, "x");
  check_reducible("all_reduce_async", *this, x);
  const int n = to_count("all_reduce_async", *this, x.numel(), "numel(x)");
  auto r = std::make_unique<MpiRequest>("MPI_Iallreduce", name_, rank_, size_);
  if (reduces_natively(x.dtype)) {
    CHECKED_MPI(MPI_Iallreduce, MPI_IN_PLACE, x.data, n, payload_type(x.dtype), mpi_op(op), comm_->comm, &r->req);
    return r;
  }
  float* buf = r->buffers.emplace_back(widen(x)).data();
  CHECKED_MPI(MPI_Iallreduce, MPI_IN_PLACE, buf, n, MPI_FLOAT, mpi_op(op), comm_->comm, &r->req);
  r->finish = [buf, x] { narrow(buf, x); };
  return r;
}

std::unique_ptr<Request> MpiCommunicator::reduce_scatter_async(TensorView in, TensorView out) {
  check_cpu("reduce_scatter_async", *this, in);
  check_cpu("reduce_scatter_async", *this, out);
  check_reduce_scatter("reduce_scatter_async", *this, in, out);
  check_reducible("reduce_scatter_async", *this, in);
  to_count("reduce_scatter_async", *this, in.numel(), "numel(in)");
  const int n = to_count("reduce_scatter_async", *this, out.numel(), "numel(out)");
  auto r = std::make_unique<MpiRequest>("MPI_Ireduce_scatter_block", name_, rank_, size_);
  if (reduces_natively(in.dtype)) {
    CHECKED_MPI(MPI_Ireduce_scatter_block, in.data, out.data, n, payload_type(in.dtype), MPI_SUM,
                comm_->comm, &r->req);
    return r;
  }
  r->buffers.reserve(2);  // stable addresses
  const float* fin = r->buffers.emplace_back(widen(in)).data();
  float* fout = r->buffers.emplace_back(static_cast<size_t>(n)).data();
  CHECKED_MPI(MPI_Ireduce_scatter_block, fin, fout, n, MPI_FLOAT, MPI_SUM, comm_->comm, &r->req);
  r->finish = [fout, out] { narrow(fout, out); };
  return r;
}

std::unique_ptr<Request> MpiCommunicator::all_gather_async(TensorView in, TensorView out) {
  check_cpu("all_gather_async", *this, in);
  check_cpu("all_gather_async", *this, out);
  check_all_gather("all_gather_async", *this, in, out);
  to_count("all_gather_async", *this, out.numel(), "numel(out)");
  const int n = to_count("all_gather_async", *this, in.numel(), "numel(in)");
  auto r = std::make_unique<MpiRequest>("MPI_Iallgather", name_, rank_, size_);
  const MPI_Datatype t = payload_type(in.dtype);
  CHECKED_MPI(MPI_Iallgather, in.data, n, t, out.data, n, t, comm_->comm, &r->req);
  return r;
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key, const std::string& name) {
  FOUNDRY_CHECK(color >= 0, "split of group '{}' into '{}': color {} must be >= 0", name_, name, color);
  auto h = std::make_unique<MpiCommHandle>();
  CHECKED_MPI(MPI_Comm_split, comm_->comm, color, key, &h->comm);
  return std::make_unique<MpiCommunicator>(std::move(h), name);
}

#undef CHECKED_MPI

}  // namespace foundry
