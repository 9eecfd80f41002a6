// Token dispatcher (DeepEP-style handle API, Megatron-Core's MoETokenDispatcher semantics):
// dispatch() sends every (token, expert) pair of the routing map to its expert, expert-major and
// stable (ops/moe_permute.h), and returns a handle; combine() consumes the handle and sums each
// token's expert outputs back into token order. Each is the other's backward:
//   dispatch_backward(handle, d_expert_rows) -> d_tokens    (a combine)
//   combine_backward(handle, d_tokens)       -> d_expert_rows (a dispatch without routing)
//   probs_backward(handle, d_row_probs)      -> d_probs (T, E) (the gradient of the row probs)
// The local implementation keeps everything in this process; the all-to-all and all-gather
// dispatchers of expert parallelism implement the same interface.
#pragma once

#include <vector>

#include "foundry/core/context.h"
#include "foundry/core/tensor.h"

namespace foundry {

struct DispatchHandle {
  Tensor row_token;          // (N) i32: the token of each row of this rank's expert-major permutation
  Tensor tokens_per_expert;  // (E_local) i64: rows per local expert (the experts' group sizes)
  int64_t num_tokens = 0;    // T
  // Expert parallelism (empty for the local dispatcher, where the permutation is the experts' rows):
  Tensor permuted_tokens_per_expert;      // (E) i64: row_token's groups (rows per global expert)
  std::vector<int64_t> chunk_counts;      // (P x E_local) rows sent by rank s to local expert l
  std::vector<int64_t> send_counts;       // (P) rows this rank sent to each rank
  int64_t gathered_tokens = 0;            // all-gather: P * T_max, the padded gathered batch of row_token
};

struct Dispatched {
  Tensor rows;   // (N, H) expert-major copies of the routed tokens
  Tensor probs;  // (N) routing probability of each row
  DispatchHandle handle;
};

class TokenDispatcher {
 public:
  virtual ~TokenDispatcher() = default;
  // x (T, H), routing_map (T, E) u8, probs (T, E) f32
  virtual Dispatched dispatch(Context& ctx, const Tensor& x, const Tensor& routing_map, const Tensor& probs) = 0;
  // expert outputs (N, H) -> (T, H)
  virtual Tensor combine(Context& ctx, const Tensor& expert_rows, const DispatchHandle& h) = 0;
  // d rows (N, H) -> d x (T, H)
  virtual Tensor dispatch_backward(Context& ctx, const Tensor& d_rows, const DispatchHandle& h) = 0;
  // d out (T, H) -> d expert rows (N, H)
  virtual Tensor combine_backward(Context& ctx, const Tensor& d_out, const DispatchHandle& h) = 0;
  // d row probs (N) -> d probs (T, E) (written; 0 where the routing map is 0)
  virtual Tensor probs_backward(Context& ctx, const Tensor& d_row_probs, const DispatchHandle& h) = 0;
};

class LocalTokenDispatcher final : public TokenDispatcher {
 public:
  Dispatched dispatch(Context& ctx, const Tensor& x, const Tensor& routing_map, const Tensor& probs) override;
  Tensor combine(Context& ctx, const Tensor& expert_rows, const DispatchHandle& h) override;
  Tensor dispatch_backward(Context& ctx, const Tensor& d_rows, const DispatchHandle& h) override;
  Tensor combine_backward(Context& ctx, const Tensor& d_out, const DispatchHandle& h) override;
  Tensor probs_backward(Context& ctx, const Tensor& d_row_probs, const DispatchHandle& h) override;
};

}  // namespace foundry
