// Expert tensor parallelism (ETP): the experts' ffn dimension split over the expert-tensor-parallel
// group of size Q (Megatron-Core's MoEAlltoAllTokenDispatcher / MoEAllGatherTokenDispatcher with
// tp_size > 1: gather_from_sequence_parallel_region(rows, group = tp, output_split_sizes) after
// the expert-parallel exchange, reduce_scatter_to_sequence_parallel_region(rows, group = tp,
// input_split_sizes) before it in combine; the experts are GroupedMLP / TEGroupedMLP with their
// fc1 / fc2 split over expert tensor parallelism). After the EP dispatch, etp rank q holds N_q rows
// grouped by local expert, c_q[l] rows for local expert l (N_q differ between ranks):
//   gather:  all_gather_v over etp -> (sum_q N_q, W) rows in (q, l) chunk order -> sorted to
//            (l, q) order, so each local expert's rows are contiguous:
//            tokens_per_expert[l] = sum_q c_q[l]; every etp rank then computes its F/Q slice of
//            every row of the group (a partial output of each row)
//   scatter: the inverse order (l, q) -> (q, l), then reduce_scatter_v over etp with counts
//            N_q W (sum over etp of the partial outputs; rank q keeps its own N_q rows; no padding:
//            the same bytes as the gather's all_gather_v)
// The two are adjoint: <gather(a), b> = <a, scatter(b)> summed over etp, so backward of gather is
// scatter (the rows' input and prob gradients) and backward of scatter is gather (d_out rows).
// Every rank of the group must call each method in the same order (they are collectives).
#pragma once

#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/core/context.h"
#include "foundry/core/tensor.h"

namespace foundry {

struct EtpHandle {
  std::vector<int64_t> counts;  // (Q x E_local) rows of etp rank q for local expert l
  Tensor tokens_per_expert;     // (E_local) i64: sum over q (the gathered rows' group sizes)
  int64_t local_rows = 0;       // N_q of this rank
  int64_t gathered_rows = 0;    // sum_q N_q
};

class ExpertTensorParallel {
 public:
  // etp: the expert-tensor-parallel group (size Q); must outlive this.
  ExpertTensorParallel(Communicator& etp, int64_t num_local_experts);

  // All-gathers this rank's per-local-expert row counts (E_local) i64 over etp.
  EtpHandle plan(Context& ctx, const Tensor& tokens_per_expert);
  // (N_q, W) local-expert-major rows -> (sum_q N_q, W) local-expert-major rows of the etp group.
  Tensor gather(Context& ctx, const Tensor& rows, const EtpHandle& h);
  // (sum_q N_q, W) partial rows -> (N_q, W): this rank's rows of the sum over etp.
  Tensor scatter(Context& ctx, const Tensor& rows, const EtpHandle& h);

 private:
  Communicator& etp_;
  int64_t num_local_experts_;
};

}  // namespace foundry
