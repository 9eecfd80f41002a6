// Pipeline-parallel schedules (Megatron-Core megatron/core/pipeline_parallel/schedules.py), as a
// model-independent engine: the model supplies its chunks (forward / backward of one microbatch),
// this file decides the order and moves the activations between the ranks of the pp group.
//
// Layout: P = pp.size() ranks, V = chunks per rank (virtual pipeline stages), S = P * V global
// stages. Chunk v of rank r is global stage s = v * P + r (Megatron's interleaved layout), so the
// activation of stage s goes to rank (r + 1) % P, chunk v + (r == P - 1): the last rank's chunk v
// feeds rank 0's chunk v + 1 (a ring). Stage 0 reads the data, stage S - 1 computes the loss.
//
// Schedules (M = microbatches; the k-th forward / backward of a rank, 0 <= k < M * V):
//   V == 1  1F1B / PipeDream-Flush (forward_backward_pipelining_without_interleaving):
//           warmup W = min(P - r - 1, M) forwards, then M - W steady steps (forward k + W, then
//           backward k), then W cooldown backwards. Forward k and backward k both use microbatch k.
//   V > 1   interleaved 1F1B (forward_backward_pipelining_with_interleaving; needs M % P == 0):
//           W = M * V when M == P (all forwards, then all backwards), else
//           W = min((P - r - 1) * 2 + (V - 1) * P, M * V); same warmup / steady / cooldown shape.
//           Forward k runs chunk (k % (P V)) / P on microbatch (k / (P V)) * P + k % P (get_model_chunk_id,
//           get_microbatch_id_in_model_chunk); backward k runs chunk V - 1 - (k % (P V)) / P on the
//           same microbatch.
// At most W + 1 (chunk, microbatch) pairs are in flight (forwarded, not yet backwarded) on a rank:
// the memory bound of 1F1B. forward_only (evaluation, Megatron's forward_only=True): the M V
// forwards in the same order, no backward.
//
// Communication: activations (forward) and their gradients (backward) travel with
// pp.send_async / pp.recv_async under two tags (kForwardTag, kBackwardTag). Every message of a
// kind between two neighbours is received in the order it was sent (the forward and backward
// orders are the same list on every rank, so no microbatch ids are needed in the tags). A rank
// posts the receive of the next forward input and of the next output gradient ahead of the op
// that needs them (Megatron's send_forward_recv_backward / ..._recv_forward overlap) and never
// blocks on a send, so no schedule step can deadlock on a neighbour that is itself sending. A sent
// buffer is released (its request waited) as soon as a later message from that neighbour proves
// the neighbour has consumed it, so sent activations do not pile up over the M microbatches (the
// gradients sent in the cooldown, at most W + 1, are waited at the end of run_pipeline).
// An error in a chunk or a hand-over check throws on that rank only; its neighbours then wait for
// messages that never come, so a caller must treat it as fatal to the job (the CLI's error handler
// aborts every rank: abort_world). The requests in flight are abandoned, not waited, on that path.
// With P == 1 every hand-over is local (no communication).
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/core/tensor.h"

namespace foundry {

// One model chunk (virtual pipeline stage) held by this rank.
struct PipelineChunk {
  virtual ~PipelineChunk() = default;
  // Forward of microbatch m. `input`: the previous stage's output activation, shape
  // activation_shape(m) (undefined Tensor on global stage 0). Returns this chunk's output
  // activation, shape activation_shape(m), sent to the next stage; the last stage computes and
  // keeps its loss itself and returns an undefined Tensor. Saves what backward needs, keyed by m.
  virtual Tensor forward(int m, const Tensor& input) = 0;
  // Backward of microbatch m. `doutput`: gradient of the output, shape activation_shape(m)
  // (undefined on the last stage). Returns the gradient of the input, shape activation_shape(m)
  // (ignored on global stage 0, which may return an undefined Tensor). Parameter gradients
  // accumulate (+=) over the microbatches. Frees m's saved state.
  virtual Tensor backward(int m, const Tensor& doutput) = 0;
};

struct PipelineConfig {
  int num_microbatches = 1;
  // Shape of the activation (and of its gradient) between any two stages for microbatch m; may
  // differ between microbatches (e.g. packed sequences of different token counts).
  std::function<Shape(int m)> activation_shape;
  DType dtype = DType::f32;       // of every activation and activation gradient
  Device device = Device::cpu();  // where the receive buffers live
  // Evaluation: forwards only (the chunks must not expect a backward; the last stage still
  // computes its loss). Sent activations are then waited at the end of run_pipeline.
  bool forward_only = false;
};

struct PipelineOp {
  enum class Kind { forward, backward };
  Kind kind = Kind::forward;
  int chunk = 0;
  int microbatch = 0;
  friend bool operator==(const PipelineOp&, const PipelineOp&) = default;
  std::string str() const;  // "F1.3": forward of chunk 1, microbatch 3; "B0.2": backward
};

inline constexpr int kPipelineForwardTag = 7001;   // activations, stage s -> s + 1
inline constexpr int kPipelineBackwardTag = 7002;  // activation gradients, stage s -> s - 1

// Warmup forwards W of rank pp_rank (see the header comment). Checks the arguments like
// pipeline_order.
int pipeline_warmup(int pp_size, int pp_rank, int num_chunks, int num_microbatches);

// The ordered list of the 2 * M * V ops this rank runs (the M * V forwards alone when
// forward_only). Errors: pp_size < 1, pp_rank outside [0, pp_size), num_chunks < 1,
// num_microbatches < 1, num_microbatches % pp_size != 0 with num_chunks > 1.
std::vector<PipelineOp> pipeline_order(int pp_size, int pp_rank, int num_chunks, int num_microbatches,
                                       bool forward_only = false);

// Runs forward + backward of all microbatches over the pp group (every rank of `pp` calls it with
// the same config). chunks[v] is chunk v of this rank (global stage v * P + rank); chunks.size() =
// V (1: 1F1B, > 1: interleaved). Errors (FOUNDRY_CHECK, naming the group, chunk, stage,
// microbatch and shapes): no chunks, a null chunk, M < 1, M % P != 0 with V > 1, no
// activation_shape, an output or input gradient of the wrong shape / dtype, a last stage that
// returns an activation.
void run_pipeline(Communicator& pp, std::span<PipelineChunk* const> chunks, const PipelineConfig& cfg);

}  // namespace foundry
