// AllGatherTokenDispatcher: expert parallelism over a group of size P by all-gather and
// reduce-scatter (Megatron-Core's MoEAllGatherTokenDispatcher over tp_ep). E experts, E_l = E / P
// per rank, rank r owning [r E_l, (r+1) E_l). Ranks may hold different token counts T_r: each
// rank's tokens are padded to T_max = max_r T_r (padding rows have an all-zero routing map).
//   dispatch:  X, map, probs = all_gather over the group (P T_max rows)
//              -> keep the local experts' columns of map and probs -> permute (expert-major, stable)
//              rows of local expert l: every rank's tokens routed to it, in (rank, token) order
//   combine:   unpermute-sum into the gathered batch (P T_max, H) -> reduce_scatter (sum over the
//              ranks' partial outputs) -> this rank's T rows
// Backward: dispatch_backward = combine; combine_backward = all_gather of d_out then the row
// gather; probs_backward = the local columns' gradient in (P T_max, E) reduce-scattered.
// Every rank of the group must call each method in the same order (they are collectives).
#pragma once

#include "foundry/comm/communicator.h"
#include "foundry/moe/token_dispatcher.h"

namespace foundry {

class AllGatherTokenDispatcher final : public TokenDispatcher {
 public:
  // group: tp_ep (here the expert-parallel group; size P, E divisible by P); must outlive this.
  AllGatherTokenDispatcher(Communicator& group, int64_t num_experts);

  int64_t num_local_experts() const { return num_experts_ / group_.size(); }
  int64_t local_expert_begin() const { return group_.rank() * num_local_experts(); }

  Dispatched dispatch(Context& ctx, const Tensor& x, const Tensor& routing_map, const Tensor& probs) override;
  Tensor combine(Context& ctx, const Tensor& expert_rows, const DispatchHandle& h) override;
  Tensor dispatch_backward(Context& ctx, const Tensor& d_rows, const DispatchHandle& h) override;
  Tensor combine_backward(Context& ctx, const Tensor& d_out, const DispatchHandle& h) override;
  Tensor probs_backward(Context& ctx, const Tensor& d_row_probs, const DispatchHandle& h) override;

 private:
  // (T, W) of this rank -> (P T_max, W), each rank's rows zero-padded to T_max.
  Tensor gather_padded(Context& ctx, const Tensor& x, int64_t t_max);
  // (P T_max, W) partial sums -> this rank's (T, W) rows of the sum over the group.
  Tensor reduce_scatter_rows(Context& ctx, const Tensor& full, int64_t t_max, int64_t T);

  Communicator& group_;
  int64_t num_experts_;
};

}  // namespace foundry
