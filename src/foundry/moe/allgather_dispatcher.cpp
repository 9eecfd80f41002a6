#include "foundry/moe/allgather_dispatcher.h"

#include <algorithm>
#include <cstring>

#include "foundry/ops/moe_permute.h"
#include "foundry/ops/moe_rows.h"

namespace foundry {

AllGatherTokenDispatcher::AllGatherTokenDispatcher(Communicator& group, int64_t num_experts)
    : group_(group), num_experts_(num_experts) {
  FOUNDRY_CHECK(num_experts > 0 && num_experts % group.size() == 0,
                "AllGatherTokenDispatcher: num_experts {} must be a positive multiple of the '{}' group size {}",
                num_experts, group.name(), group.size());
}

Tensor AllGatherTokenDispatcher::gather_padded(Context& ctx, const Tensor& x, int64_t t_max) {
  const int64_t T = x.size(0), W = x.size(1), P = group_.size();
  Tensor pad = Tensor::zeros({t_max, W}, x.dtype(), ctx.device);
  if (T > 0) std::memcpy(pad.data(), x.data(), static_cast<size_t>(x.nbytes()));
  Tensor full = Tensor::empty({P * t_max, W}, x.dtype(), ctx.device);
  group_.all_gather(pad, full);
  return full;
}

Tensor AllGatherTokenDispatcher::reduce_scatter_rows(Context& ctx, const Tensor& full, int64_t t_max, int64_t T) {
  const int64_t W = full.size(1);
  Tensor mine = Tensor::empty({t_max, W}, DType::f32, ctx.device);
  group_.reduce_scatter(full, mine);
  Tensor out = Tensor::empty({T, W}, DType::f32, ctx.device);
  if (T > 0) std::memcpy(out.data(), mine.data(), static_cast<size_t>(out.nbytes()));
  return out;
}

Dispatched AllGatherTokenDispatcher::dispatch(Context& ctx, const Tensor& x, const Tensor& routing_map,
                                              const Tensor& probs) {
  const int64_t T = x.size(0), H = x.size(1), E = num_experts_, P = group_.size(), El = num_local_experts();
  FOUNDRY_CHECK(routing_map.ndim() == 2 && routing_map.size(0) == T && routing_map.size(1) == E,
                "AllGatherTokenDispatcher::dispatch: routing_map {} for x {} and {} experts",
                routing_map.shape().str(), x.shape().str(), E);
  Tensor counts = Tensor::empty({P}, DType::i64, ctx.device);
  group_.all_gather(Tensor::from<int64_t>({1}, std::vector<int64_t>{T}), counts);
  const int64_t t_max = *std::max_element(counts.ptr<int64_t>(), counts.ptr<int64_t>() + P);
  const Tensor gx = gather_padded(ctx, x, t_max);              // (P T_max, H)
  const Tensor gmap = gather_padded(ctx, routing_map, t_max);  // (P T_max, E) u8, padding rows unrouted
  const Tensor gprobs = gather_padded(ctx, probs, t_max);      // (P T_max, E)
  // The local experts' columns.
  const int64_t G = P * t_max, begin = local_expert_begin();
  Tensor map_loc = Tensor::empty({G, El}, DType::u8, ctx.device);
  Tensor probs_loc = Tensor::empty({G, El}, DType::f32, ctx.device);
  for (int64_t t = 0; t < G; ++t)
    for (int64_t l = 0; l < El; ++l) {
      map_loc.ptr<uint8_t>()[t * El + l] = gmap.ptr<uint8_t>()[t * E + begin + l];
      probs_loc.ptr<float>()[t * El + l] = gprobs.ptr<float>()[t * E + begin + l];
    }
  const int64_t N = moe_permute_num_rows(map_loc);
  Dispatched d;
  d.rows = Tensor::empty({N, H}, DType::f32, ctx.device);
  d.probs = Tensor::empty({N}, DType::f32, ctx.device);
  d.handle.row_token = Tensor::empty({N}, DType::i32, ctx.device);
  d.handle.tokens_per_expert = Tensor::empty({El}, DType::i64, ctx.device);
  d.handle.num_tokens = T;
  d.handle.gathered_tokens = G;
  moe_permute_forward({.routing_map = map_loc, .probs = probs_loc, .x = gx, .permuted = d.rows,
                       .permuted_probs = d.probs, .row_token = d.handle.row_token,
                       .tokens_per_expert = d.handle.tokens_per_expert});
  return d;
}

Tensor AllGatherTokenDispatcher::combine(Context& ctx, const Tensor& expert_rows, const DispatchHandle& h) {
  const int64_t G = h.gathered_tokens, t_max = G / group_.size();
  Tensor full = Tensor::empty({G, expert_rows.size(1)}, DType::f32, ctx.device);
  moe_unpermute_forward({.y = expert_rows, .row_token = h.row_token, .out = full});
  return reduce_scatter_rows(ctx, full, t_max, h.num_tokens);
}

Tensor AllGatherTokenDispatcher::dispatch_backward(Context& ctx, const Tensor& d_rows, const DispatchHandle& h) {
  return combine(ctx, d_rows, h);  // the gradient of each copy returns to its token and is summed
}

Tensor AllGatherTokenDispatcher::combine_backward(Context& ctx, const Tensor& d_out, const DispatchHandle& h) {
  const Tensor full = gather_padded(ctx, d_out, h.gathered_tokens / group_.size());  // (P T_max, H)
  Tensor d_rows = Tensor::empty({h.row_token.numel(), d_out.size(1)}, DType::f32, ctx.device);
  moe_unpermute_backward({.row_token = h.row_token, .dout = full, .dy = d_rows});
  return d_rows;
}

Tensor AllGatherTokenDispatcher::probs_backward(Context& ctx, const Tensor& d_row_probs, const DispatchHandle& h) {
  const int64_t G = h.gathered_tokens, E = num_experts_, El = num_local_experts(), begin = local_expert_begin();
  Tensor loc = Tensor::empty({G, El}, DType::f32, ctx.device);
  probs_scatter({.drow = d_row_probs, .row_token = h.row_token, .tokens_per_expert = h.tokens_per_expert,
                 .dprobs = loc});
  Tensor full = Tensor::zeros({G, E}, DType::f32, ctx.device);  // other ranks' columns are 0 here
  for (int64_t t = 0; t < G; ++t)
    for (int64_t l = 0; l < El; ++l) full.ptr<float>()[t * E + begin + l] = loc.ptr<float>()[t * El + l];
  return reduce_scatter_rows(ctx, full, G / group_.size(), h.num_tokens);
}

}  // namespace foundry
