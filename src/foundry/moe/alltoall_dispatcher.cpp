#include "foundry/moe/alltoall_dispatcher.h"

#include <cstring>

#include "foundry/ops/moe_permute.h"
#include "foundry/ops/moe_rows.h"

namespace foundry {

namespace {

int64_t sum(const std::vector<int64_t>& v, size_t begin, size_t end) {
  int64_t s = 0;
  for (size_t i = begin; i < end; ++i) s += v[i];
  return s;
}

std::vector<int64_t> offsets_of(const std::vector<int64_t>& counts, int64_t scale) {
  std::vector<int64_t> off(counts.size());
  int64_t o = 0;
  for (size_t i = 0; i < counts.size(); ++i) off[i] = o, o += counts[i] * scale;
  return off;
}

std::vector<int64_t> scaled(const std::vector<int64_t>& counts, int64_t scale) {
  std::vector<int64_t> s(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) s[i] = counts[i] * scale;
  return s;
}

// Copies the (P x E_l) chunks of `src` (rows of width W) between source-rank-major order
// (s, l) and local-expert-major order (l, s); to_expert_major selects the direction.
void sort_chunks(const float* src, float* dst, const std::vector<int64_t>& chunk_counts, int64_t P, int64_t El,
                 int64_t W, bool to_expert_major) {
  std::vector<int64_t> rank_major(static_cast<size_t>(P * El));  // row offset of chunk (s, l)
  int64_t o = 0;
  for (int64_t s = 0; s < P; ++s)
    for (int64_t l = 0; l < El; ++l) rank_major[s * El + l] = o, o += chunk_counts[s * El + l];
  o = 0;
  for (int64_t l = 0; l < El; ++l)
    for (int64_t s = 0; s < P; ++s) {
      const int64_t n = chunk_counts[s * El + l], rm = rank_major[s * El + l];
      const int64_t from = to_expert_major ? rm : o, to = to_expert_major ? o : rm;
      if (n > 0) std::memcpy(dst + to * W, src + from * W, static_cast<size_t>(n * W) * sizeof(float));
      o += n;
    }
}

}  // namespace

AllToAllTokenDispatcher::AllToAllTokenDispatcher(Communicator& ep, int64_t num_experts)
    : ep_(ep), num_experts_(num_experts) {
  FOUNDRY_CHECK(num_experts > 0 && num_experts % ep.size() == 0,
                "AllToAllTokenDispatcher: num_experts {} must be a positive multiple of the '{}' group size {}",
                num_experts, ep.name(), ep.size());
}

Tensor AllToAllTokenDispatcher::to_experts(Context& ctx, const Tensor& rows, const DispatchHandle& h) {
  const int64_t P = ep_.size(), El = num_local_experts(), W = rows.size(1);
  std::vector<int64_t> recv_counts(static_cast<size_t>(P));
  for (int64_t s = 0; s < P; ++s) recv_counts[s] = sum(h.chunk_counts, s * El, (s + 1) * El);
  const int64_t n_recv = sum(recv_counts, 0, recv_counts.size());
  FOUNDRY_CHECK(rows.size(0) == h.row_token.numel(), "AllToAllTokenDispatcher: {} rows for a dispatch of {} rows",
                rows.size(0), h.row_token.numel());
  Tensor recv = Tensor::empty({n_recv, W}, DType::f32, ctx.device);
  ep_.all_to_all_v(rows, scaled(h.send_counts, W), offsets_of(h.send_counts, W), recv, scaled(recv_counts, W),
                   offsets_of(recv_counts, W));
  Tensor out = Tensor::empty({n_recv, W}, DType::f32, ctx.device);
  sort_chunks(recv.ptr<float>(), out.ptr<float>(), h.chunk_counts, P, El, W, true);
  return out;
}

Tensor AllToAllTokenDispatcher::from_experts(Context& ctx, const Tensor& rows, const DispatchHandle& h) {
  const int64_t P = ep_.size(), El = num_local_experts(), W = rows.size(1);
  std::vector<int64_t> recv_counts(static_cast<size_t>(P));  // what this rank received in dispatch
  for (int64_t s = 0; s < P; ++s) recv_counts[s] = sum(h.chunk_counts, s * El, (s + 1) * El);
  const int64_t n_recv = sum(recv_counts, 0, recv_counts.size());
  FOUNDRY_CHECK(rows.size(0) == n_recv, "AllToAllTokenDispatcher: {} expert rows, the dispatch delivered {}",
                rows.size(0), n_recv);
  Tensor unsorted = Tensor::empty({n_recv, W}, DType::f32, ctx.device);
  sort_chunks(rows.ptr<float>(), unsorted.ptr<float>(), h.chunk_counts, P, El, W, false);
  Tensor back = Tensor::empty({h.row_token.numel(), W}, DType::f32, ctx.device);
  ep_.all_to_all_v(unsorted, scaled(recv_counts, W), offsets_of(recv_counts, W), back, scaled(h.send_counts, W),
                   offsets_of(h.send_counts, W));
  return back;
}

Dispatched AllToAllTokenDispatcher::dispatch(Context& ctx, const Tensor& x, const Tensor& routing_map,
                                             const Tensor& probs) {
  const int64_t T = x.size(0), H = x.size(1), E = num_experts_, P = ep_.size(), El = num_local_experts();
  FOUNDRY_CHECK(routing_map.ndim() == 2 && routing_map.size(0) == T && routing_map.size(1) == E,
                "AllToAllTokenDispatcher::dispatch: routing_map {} for x {} and {} experts",
                routing_map.shape().str(), x.shape().str(), E);
  // 1. Local permutation by global expert (expert-major, so rank d's experts are one block).
  const int64_t N = moe_permute_num_rows(routing_map);
  Tensor rows = Tensor::empty({N, H}, DType::f32, ctx.device);
  Tensor row_probs = Tensor::empty({N}, DType::f32, ctx.device);
  Dispatched d;
  DispatchHandle& h = d.handle;
  h.num_tokens = T;
  h.row_token = Tensor::empty({N}, DType::i32, ctx.device);
  h.permuted_tokens_per_expert = Tensor::empty({E}, DType::i64, ctx.device);
  moe_permute_forward({.routing_map = routing_map, .probs = probs, .x = x, .permuted = rows,
                       .permuted_probs = row_probs, .row_token = h.row_token,
                       .tokens_per_expert = h.permuted_tokens_per_expert});
  // 2. Counts: chunk_counts[s, l] = rows rank s sends to this rank's local expert l.
  const std::vector<int64_t> el_each(static_cast<size_t>(P), El);
  Tensor chunk = Tensor::empty({P * El}, DType::i64, ctx.device);
  ep_.all_to_all_v(h.permuted_tokens_per_expert, el_each, offsets_of(el_each, 1), chunk, el_each,
                   offsets_of(el_each, 1));
  h.chunk_counts.assign(chunk.ptr<int64_t>(), chunk.ptr<int64_t>() + P * El);
  const int64_t* tpe = h.permuted_tokens_per_expert.ptr<int64_t>();
  h.send_counts.assign(static_cast<size_t>(P), 0);
  for (int64_t e = 0; e < E; ++e) h.send_counts[static_cast<size_t>(e / El)] += tpe[e];
  h.tokens_per_expert = Tensor::zeros({El}, DType::i64, ctx.device);
  for (int64_t s = 0; s < P; ++s)
    for (int64_t l = 0; l < El; ++l) h.tokens_per_expert.ptr<int64_t>()[l] += h.chunk_counts[s * El + l];
  // 3. Rows and probs to their experts' ranks, grouped by local expert.
  d.rows = to_experts(ctx, rows, h);
  const Tensor p = to_experts(ctx, row_probs.reshape({N, 1}), h);
  d.probs = p.reshape({p.size(0)});
  return d;
}

Tensor AllToAllTokenDispatcher::combine(Context& ctx, const Tensor& expert_rows, const DispatchHandle& h) {
  const Tensor back = from_experts(ctx, expert_rows, h);  // (N_send, H)
  Tensor out = Tensor::empty({h.num_tokens, expert_rows.size(1)}, DType::f32, ctx.device);
  moe_unpermute_forward({.y = back, .row_token = h.row_token, .out = out});
  return out;
}

Tensor AllToAllTokenDispatcher::dispatch_backward(Context& ctx, const Tensor& d_rows, const DispatchHandle& h) {
  return combine(ctx, d_rows, h);  // the gradient of each copy returns to its token and is summed
}

Tensor AllToAllTokenDispatcher::combine_backward(Context& ctx, const Tensor& d_out, const DispatchHandle& h) {
  Tensor gathered = Tensor::empty({h.row_token.numel(), d_out.size(1)}, DType::f32, ctx.device);
  moe_unpermute_backward({.row_token = h.row_token, .dout = d_out, .dy = gathered});  // (N_send, H)
  return to_experts(ctx, gathered, h);
}

Tensor AllToAllTokenDispatcher::probs_backward(Context& ctx, const Tensor& d_row_probs, const DispatchHandle& h) {
  const Tensor back = from_experts(ctx, d_row_probs.reshape({d_row_probs.numel(), 1}), h);  // (N_send, 1)
  Tensor dprobs = Tensor::empty({h.num_tokens, num_experts_}, DType::f32, ctx.device);
  probs_scatter({.drow = back.reshape({back.size(0)}), .row_token = h.row_token,
                 .tokens_per_expert = h.permuted_tokens_per_expert, .dprobs = dprobs});
  return dprobs;
}

}  // namespace foundry
