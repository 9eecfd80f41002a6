// Pipeline-parallel schedules: 1F1B and interleaved 1F1B (Megatron-Core
// megatron/core/pipeline_parallel/schedules.py, forward_backward_pipelining_without_interleaving and
// forward_backward_pipelining_with_interleaving; p2p_communication.py for the hand-overs). See
// pipeline_schedule.h for the formulas.
#include "foundry/train/pipeline_schedule.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "foundry/core/check.h"

namespace foundry {

namespace {

using Kind = PipelineOp::Kind;

void check_layout(int P, int r, int V, int M) {
  FOUNDRY_CHECK(P >= 1, "pipeline: pipeline-model-parallel size must be >= 1, got {}", P);
  FOUNDRY_CHECK(r >= 0 && r < P, "pipeline: rank {} outside the pipeline group of size {}", r, P);
  FOUNDRY_CHECK(V >= 1, "pipeline: need at least one model chunk per rank, got {}", V);
  FOUNDRY_CHECK(M >= 1, "pipeline: num_microbatches must be >= 1, got {}", M);
  FOUNDRY_CHECK(V == 1 || M % P == 0,
                "pipeline: number of microbatches ({}) is not divisible by pipeline-model-parallel size ({}) "
                "when using the interleaved schedule ({} model chunks per rank, as Megatron requires)",
                M, P, V);
}

// The k-th forward of every rank (0 <= k < M V): chunk (k % (P V)) / P, microbatch
// (k / (P V)) * P + k % P (Megatron's get_model_chunk_id / get_microbatch_id_in_model_chunk);
// with V == 1 simply microbatch k.
PipelineOp forward_op(int k, int P, int V) {
  return {Kind::forward, (k % (P * V)) / P, (k / (P * V)) * P + k % P};
}

// The k-th backward: the same microbatch, chunks in reverse.
PipelineOp backward_op(int k, int P, int V) {
  const PipelineOp f = forward_op(k, P, V);
  return {Kind::backward, V - 1 - f.chunk, f.microbatch};
}

// Position of each op in a rank's order, indexed by key(kind, chunk, microbatch).
struct OrderIndex {
  int V = 1, M = 1;
  std::vector<int> pos;
  OrderIndex(const std::vector<PipelineOp>& order, int V_, int M_) : V(V_), M(M_), pos(2 * V_ * M_, -1) {
    for (int i = 0; i < static_cast<int>(order.size()); ++i)
      pos[key(order[i].kind, order[i].chunk, order[i].microbatch)] = i;
  }
  int key(Kind k, int chunk, int m) const { return ((k == Kind::forward ? 0 : V) + chunk) * M + m; }
  int operator()(Kind k, int chunk, int m) const {
    FOUNDRY_CHECK(chunk >= 0 && chunk < V && m >= 0 && m < M && pos[key(k, chunk, m)] >= 0,
                  "pipeline: no op {}{}.{} in the neighbour's order (schedule bug)", k == Kind::forward ? 'F' : 'B',
                  chunk, m);
    return pos[key(k, chunk, m)];
  }
};

struct Message {
  Tensor buf;                    // the tensor being sent / received into (kept alive until wait)
  std::unique_ptr<Request> req;
  int peer = 0;
  int peer_op = 0;  // send: the op of the peer that consumes it; recv: the op of the peer that sent it
};

// One rank's run of the schedule (P > 1: messages; P == 1: local hand-overs).
class Engine {
 public:
  Engine(Communicator& pp, std::span<PipelineChunk* const> chunks, const PipelineConfig& cfg)
      : pp_(pp), chunks_(chunks), cfg_(cfg), P_(pp.size()), r_(pp.rank()), V_(static_cast<int>(chunks.size())),
        M_(cfg.num_microbatches), S_(P_ * V_), prev_((r_ - 1 + P_) % P_), next_((r_ + 1) % P_),
        order_(pipeline_order(P_, r_, V_, M_, cfg.forward_only)), progress_(P_, -1) {
    if (P_ == 1) return;
    prev_index_ = std::make_unique<OrderIndex>(pipeline_order(P_, prev_, V_, M_, cfg.forward_only), V_, M_);
    next_index_ = std::make_unique<OrderIndex>(pipeline_order(P_, next_, V_, M_, cfg.forward_only), V_, M_);
    for (int i = 0; i < static_cast<int>(order_.size()); ++i) {
      const PipelineOp& op = order_[i];
      const int s = stage(op.chunk);
      if (op.kind == Kind::forward && s > 0) recv_ops_[0].push_back(i);
      if (op.kind == Kind::backward && s < S_ - 1) recv_ops_[1].push_back(i);
    }
  }

  void run() {
    for (int i = 0; i < static_cast<int>(order_.size()); ++i) {
      if (P_ > 1) post_receives(i);
      const PipelineOp& op = order_[i];
      if (op.kind == Kind::forward)
        run_forward(i, op);
      else
        run_backward(i, op);
    }
    for (Message& s : sent_) s.req->wait();
    sent_.clear();
  }

  // After an error: the neighbours may never send what this rank waits for, and waiting a request
  // in its destructor could block forever. The job is ending (the CLI aborts every rank), so the
  // requests and their buffers are deliberately left to MPI instead of being completed.
  void abandon() {
    if (received_.empty() && sent_.empty()) return;
    auto* leaked = new std::vector<Message>();  // NOLINT: intentionally never freed
    for (auto& [i, m] : received_) leaked->push_back(std::move(m));
    for (Message& m : sent_) leaked->push_back(std::move(m));
    received_.clear();
    sent_.clear();
    for (Message& m : *leaked) (void)m.req.release();  // never destroyed, never waited
  }

 private:
  int stage(int chunk) const { return chunk * P_ + r_; }

  std::string where(const PipelineOp& op) const {
    return fmt::format("run_pipeline on group '{}' (rank {} of {}, chunk {} = global stage {} of {}, microbatch {})",
                       pp_.name(), r_, P_, op.chunk, stage(op.chunk), S_, op.microbatch);
  }

  // Post the receive of every op up to i that needs one, plus the next one of each kind after i,
  // in op order (the order the neighbour sends them).
  void post_receives(int i) {
    for (int kind = 0; kind < 2; ++kind) {
      const std::vector<int>& ops = recv_ops_[kind];
      size_t& n = posted_[kind];
      while (n < ops.size() && (ops[n] <= i || n == 0 || ops[n - 1] <= i)) {
        const int j = ops[n++];
        const PipelineOp& op = order_[j];
        const bool fwd = op.kind == Kind::forward;
        Message msg;
        msg.buf = Tensor::empty(cfg_.activation_shape(op.microbatch), cfg_.dtype, cfg_.device);
        msg.peer = fwd ? prev_ : next_;
        // The neighbour's op that sends it: the previous / next global stage, same microbatch.
        msg.peer_op = fwd ? (*prev_index_)(Kind::forward, op.chunk - (r_ == 0), op.microbatch)
                          : (*next_index_)(Kind::backward, op.chunk + (r_ == P_ - 1), op.microbatch);
        msg.req = pp_.recv_async(msg.buf, msg.peer, fwd ? kPipelineForwardTag : kPipelineBackwardTag);
        received_.emplace(j, std::move(msg));
      }
    }
  }

  // The input (forward) or output gradient (backward) of op i, received or handed over locally.
  Tensor take(int i, const PipelineOp& op) {
    const bool fwd = op.kind == Kind::forward;
    if (P_ == 1) {
      auto& local = fwd ? local_act_ : local_grad_;
      auto it = local.find({op.chunk, op.microbatch});
      FOUNDRY_CHECK(it != local.end(), "{}: no {} handed over (schedule bug)", where(op),
                    fwd ? "input activation" : "output gradient");
      Tensor t = std::move(it->second);
      local.erase(it);
      return t;
    }
    auto it = received_.find(i);
    FOUNDRY_CHECK(it != received_.end(), "{}: receive not posted (schedule bug)", where(op));
    Message msg = std::move(it->second);
    received_.erase(it);
    msg.req->wait();
    // The neighbour has run its op msg.peer_op, so it has received everything this rank sent it
    // that it consumes at or before that op: those sends are complete and their buffers free.
    progress_[msg.peer] = std::max(progress_[msg.peer], msg.peer_op);
    release_sends(msg.peer);
    return msg.buf;
  }

  void release_sends(int peer) {
    for (size_t k = 0; k < sent_.size();) {
      if (sent_[k].peer == peer && sent_[k].peer_op <= progress_[peer]) {
        sent_[k].req->wait();
        sent_.erase(sent_.begin() + static_cast<std::ptrdiff_t>(k));
      } else {
        ++k;
      }
    }
  }

  void check_handover(const Tensor& t, const PipelineOp& op, const char* what) const {
    const Shape want = cfg_.activation_shape(op.microbatch);
    FOUNDRY_CHECK(t.defined(), "{}: {} is undefined; expected shape {}", where(op), what, want.str());
    FOUNDRY_CHECK(t.shape() == want, "{}: {} has shape {}, activation_shape({}) is {}", where(op), what,
                  t.shape().str(), op.microbatch, want.str());
    FOUNDRY_CHECK(t.dtype() == cfg_.dtype, "{}: {} has dtype {}, the pipeline's dtype is {}", where(op), what,
                  dtype_name(t.dtype()), dtype_name(cfg_.dtype));
    FOUNDRY_CHECK(t.device() == cfg_.device, "{}: {} is on another device than the pipeline's", where(op), what);
  }

  void run_forward(int i, const PipelineOp& op) {
    const int s = stage(op.chunk);
    const Tensor input = s > 0 ? take(i, op) : Tensor();
    Tensor out = chunks_[op.chunk]->forward(op.microbatch, input);
    if (s == S_ - 1) {
      FOUNDRY_CHECK(!out.defined(), "{}: the last stage must keep its loss and return an undefined Tensor, got {}",
                    where(op), out.shape().str());
      return;
    }
    check_handover(out, op, "the forward output");
    if (P_ == 1) {
      local_act_[{op.chunk + 1, op.microbatch}] = std::move(out);
      return;
    }
    // Receiver: rank next_, chunk op.chunk (+ 1 from the last rank to rank 0).
    Message msg;
    msg.peer = next_;
    msg.peer_op = (*next_index_)(Kind::forward, op.chunk + (r_ == P_ - 1), op.microbatch);
    msg.req = pp_.send_async(out, next_, kPipelineForwardTag);
    msg.buf = std::move(out);
    sent_.push_back(std::move(msg));
  }

  void run_backward(int i, const PipelineOp& op) {
    const int s = stage(op.chunk);
    const Tensor dout = s < S_ - 1 ? take(i, op) : Tensor();
    Tensor din = chunks_[op.chunk]->backward(op.microbatch, dout);
    if (s == 0) return;
    check_handover(din, op, "the input gradient");
    if (P_ == 1) {
      local_grad_[{op.chunk - 1, op.microbatch}] = std::move(din);
      return;
    }
    Message msg;
    msg.peer = prev_;
    msg.peer_op = (*prev_index_)(Kind::backward, op.chunk - (r_ == 0), op.microbatch);
    msg.req = pp_.send_async(din, prev_, kPipelineBackwardTag);
    msg.buf = std::move(din);
    sent_.push_back(std::move(msg));
  }

  Communicator& pp_;
  std::span<PipelineChunk* const> chunks_;
  const PipelineConfig& cfg_;
  const int P_, r_, V_, M_, S_, prev_, next_;
  const std::vector<PipelineOp> order_;
  std::unique_ptr<OrderIndex> prev_index_, next_index_;
  std::vector<int> recv_ops_[2];   // ops (indices into order_) that receive: [0] forward input, [1] grad
  size_t posted_[2] = {0, 0};      // how many of recv_ops_[k] are posted
  std::map<int, Message> received_;  // posted receives by op index
  std::vector<Message> sent_;        // sends not yet known complete
  std::vector<int> progress_;        // per rank: the latest op it is known to have run
  std::map<std::pair<int, int>, Tensor> local_act_, local_grad_;  // P == 1: by (receiving chunk, m)
};

}  // namespace

std::string PipelineOp::str() const {
  return fmt::format("{}{}.{}", kind == Kind::forward ? 'F' : 'B', chunk, microbatch);
}

int pipeline_warmup(int P, int r, int V, int M) {
  check_layout(P, r, V, M);
  if (V == 1) return std::min(P - r - 1, M);
  if (M == P) return M * V;  // Megatron: all forwards, then all backwards
  return std::min((P - r - 1) * 2 + (V - 1) * P, M * V);
}

std::vector<PipelineOp> pipeline_order(int P, int r, int V, int M, bool forward_only) {
  check_layout(P, r, V, M);
  const int total = M * V, W = forward_only ? total : pipeline_warmup(P, r, V, M);
  std::vector<PipelineOp> order;
  order.reserve(2 * static_cast<size_t>(total));
  for (int k = 0; k < W; ++k) order.push_back(forward_op(k, P, V));
  for (int k = 0; k < total - W; ++k) {
    order.push_back(forward_op(k + W, P, V));
    order.push_back(backward_op(k, P, V));
  }
  if (forward_only) return order;
  for (int k = total - W; k < total; ++k) order.push_back(backward_op(k, P, V));
  return order;
}

void run_pipeline(Communicator& pp, std::span<PipelineChunk* const> chunks, const PipelineConfig& cfg) {
  FOUNDRY_CHECK(!chunks.empty(), "run_pipeline on group '{}' (rank {}): no model chunks", pp.name(), pp.rank());
  for (size_t v = 0; v < chunks.size(); ++v)
    FOUNDRY_CHECK(chunks[v] != nullptr, "run_pipeline on group '{}' (rank {}): chunk {} is null", pp.name(),
                  pp.rank(), v);
  FOUNDRY_CHECK(cfg.activation_shape != nullptr,
                "run_pipeline on group '{}': PipelineConfig::activation_shape is not set", pp.name());
  Engine engine(pp, chunks, cfg);  // checks M and M % P (pipeline_order)
  try {
    engine.run();
  } catch (...) {
    engine.abandon();
    throw;
  }
}

}  // namespace foundry
