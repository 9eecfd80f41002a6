// AllToAllTokenDispatcher: expert parallelism over an EP group of size P (Megatron-Core's
// MoEAlltoAllTokenDispatcher). E experts, E_l = E / P per rank; rank r owns the consecutive
// experts [r E_l, (r+1) E_l) (Megatron's layout). For a rank's T tokens:
//   dispatch:  permute by global expert (expert-major, stable; ops/moe_permute.h)
//              -> all_to_all of the per-expert counts: C[s][l] = rows rank s sends to local expert l
//              -> all_to_all_v of the rows (and their probs): rows of rank d's experts go to d
//              -> sort the received chunks from (source rank, local expert) to (local expert,
//                 source rank) order (Megatron's sort_chunks_by_idxs), so each local expert's rows
//                 are contiguous: tokens_per_expert[l] = sum_s C[s][l]
//   combine:   the exact inverse: unsort -> all_to_all_v back -> unpermute (sum into tokens)
// Backward: dispatch_backward = combine, combine_backward = the row movement of dispatch applied to
// the gathered d_out rows (no routing), probs_backward = the probs' path of dispatch reversed then
// scattered into (T, E). Each pair is adjoint: <combine(a), b> = <a, combine_backward(b)>.
// Every rank of the group must call each method in the same order (they are collectives).
#pragma once

#include "foundry/comm/communicator.h"
#include "foundry/moe/token_dispatcher.h"

namespace foundry {

class AllToAllTokenDispatcher final : public TokenDispatcher {
 public:
  // ep: the expert-parallel group (size P, E divisible by P); must outlive the dispatcher.
  AllToAllTokenDispatcher(Communicator& ep, int64_t num_experts);

  int64_t num_local_experts() const { return num_experts_ / ep_.size(); }
  int64_t local_expert_begin() const { return ep_.rank() * num_local_experts(); }

  Dispatched dispatch(Context& ctx, const Tensor& x, const Tensor& routing_map, const Tensor& probs) override;
  Tensor combine(Context& ctx, const Tensor& expert_rows, const DispatchHandle& h) override;
  Tensor dispatch_backward(Context& ctx, const Tensor& d_rows, const DispatchHandle& h) override;
  Tensor combine_backward(Context& ctx, const Tensor& d_out, const DispatchHandle& h) override;
  Tensor probs_backward(Context& ctx, const Tensor& d_row_probs, const DispatchHandle& h) override;

 private:
  // (N_send, W) rows in this rank's permuted order -> (N_recv, W) rows grouped by local expert.
  Tensor to_experts(Context& ctx, const Tensor& rows, const DispatchHandle& h);
  // The inverse: (N_recv, W) local-expert-major rows -> (N_send, W) in this rank's permuted order.
  Tensor from_experts(Context& ctx, const Tensor& rows, const DispatchHandle& h);

  Communicator& ep_;
  int64_t num_experts_;
};

}  // namespace foundry
