#include "foundry/moe/token_dispatcher.h"

#include "foundry/ops/moe_permute.h"
#include "foundry/ops/moe_rows.h"

namespace foundry {

Dispatched LocalTokenDispatcher::dispatch(Context& ctx, const Tensor& x, const Tensor& routing_map,
                                          const Tensor& probs) {
  const int64_t T = x.size(0), H = x.size(1), E = routing_map.size(1);
  int64_t N = 0;
  const uint8_t* map = routing_map.ptr<uint8_t>();
  for (int64_t i = 0; i < routing_map.numel(); ++i) N += map[i] != 0;
  Dispatched d;
  d.rows = Tensor::empty({N, H}, DType::f32, ctx.device);
  d.probs = Tensor::empty({N}, DType::f32, ctx.device);
  d.handle.row_token = Tensor::empty({N}, DType::i32, ctx.device);
  d.handle.tokens_per_expert = Tensor::empty({E}, DType::i64, ctx.device);
  d.handle.num_tokens = T;
  moe_permute_forward({.routing_map = routing_map, .probs = probs, .x = x, .permuted = d.rows,
                       .permuted_probs = d.probs, .row_token = d.handle.row_token,
                       .tokens_per_expert = d.handle.tokens_per_expert});
  return d;
}

Tensor LocalTokenDispatcher::combine(Context& ctx, const Tensor& expert_rows, const DispatchHandle& h) {
  Tensor out = Tensor::empty({h.num_tokens, expert_rows.size(1)}, DType::f32, ctx.device);
  moe_unpermute_forward({.y = expert_rows, .row_token = h.row_token, .out = out});
  return out;
}

Tensor LocalTokenDispatcher::dispatch_backward(Context& ctx, const Tensor& d_rows, const DispatchHandle& h) {
  return combine(ctx, d_rows, h);  // the gradient of a copy is summed back into its token
}

Tensor LocalTokenDispatcher::combine_backward(Context& ctx, const Tensor& d_out, const DispatchHandle& h) {
  Tensor d_rows = Tensor::empty({h.row_token.numel(), d_out.size(1)}, DType::f32, ctx.device);
  moe_unpermute_backward({.row_token = h.row_token, .dout = d_out, .dy = d_rows});
  return d_rows;
}

Tensor LocalTokenDispatcher::probs_backward(Context& ctx, const Tensor& d_row_probs, const DispatchHandle& h) {
  Tensor dprobs = Tensor::empty({h.num_tokens, h.tokens_per_expert.numel()}, DType::f32, ctx.device);
  probs_scatter({.drow = d_row_probs, .row_token = h.row_token, .tokens_per_expert = h.tokens_per_expert,
                 .dprobs = dprobs});
  return dprobs;
}

}  // namespace foundry
