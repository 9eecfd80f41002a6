// MoELayer (Megatron-Core MoELayer): router -> token dispatcher -> grouped experts -> combine,
// plus optional shared experts applied to every token:
//   probs, routing_map = Router(x)
//   rows, handle       = dispatch(x, routing_map, probs)
//   y                  = combine(GroupedExperts(rows, row probs), handle) [+ SharedExperts(x)]
// The router's auxiliary losses (load balancing, z-loss) are reported in the Saved stats and
// their gradients enter in backward, scaled by aux_grad_scale (Megatron's
// MoEAuxLossAutoScaler: the main loss scale, e.g. 1 / num_microbatches; as a FeedForward the
// scale comes from ctx.aux_loss_scale).
// Expert parallelism (Config::ep, a group of size P > 1): the router still scores all E experts;
// this rank holds only its E / P consecutive experts [rank E/P, (rank+1) E/P) and tokens move by
// the AllToAllTokenDispatcher (or the AllGatherTokenDispatcher).
// Expert tensor parallelism (Config::etp, a group of size Q > 1; moe/expert_tensor_parallel.h):
// each local expert's ffn is split over etp (fc1 (E/P, 2F/Q, H) = [gate_q; up_q], fc2
// (E/P, H, F/Q)); after the EP dispatch the rows are all-gathered over etp, every etp rank computes
// its F/Q slice of all of them, and the partial outputs are reduce-scattered (summed) back before
// the EP combine. Both dispatchers; backward is the adjoint. (Megatron's Parallel Folding: etp and
// ep come from the expert rank generator, comm/mesh.h.)
// The expert weights are sharded ParamSpecs of the full tensors "...mlp.experts.linear_fc1.weight"
// (E, 2F, H) and "...linear_fc2.weight" (E, H, F) (global offsets in the spec's blocks), so they
// initialise as the slice of the one-process init and checkpoints hold the full tensors.
// Router aux / z losses: RouterConfig::tp_cp / tp_dp_cp (router.h) make them group losses when the
// layer's tokens are split by sequence parallelism; without them they use this rank's tokens only.
#pragma once

#include <memory>
#include <optional>

#include "foundry/comm/communicator.h"
#include "foundry/moe/expert_tensor_parallel.h"
#include "foundry/moe/grouped_experts.h"
#include "foundry/moe/router.h"
#include "foundry/moe/shared_experts.h"
#include "foundry/moe/token_dispatcher.h"
#include "foundry/nn/feed_forward.h"

namespace foundry {

struct MoELayer : FeedForward {
  struct Config {
    RouterConfig router;             // hidden, num_experts, topk, score function, losses, capacity
    int64_t moe_ffn_hidden_size = 0;
    int64_t shared_expert_ffn = 0;   // moe_shared_expert_intermediate_size; 0: none
    bool shared_expert_gate = false; // moe_shared_expert_gate
    DType compute = DType::f32;      // experts' GEMM inputs (bf16 or f32); the router stays f32
    float init_std = 0.02f;
    float output_init_std = 0.02f;
    Communicator* ep = nullptr;      // expert-parallel group (outlives the layer); null or size 1: all local
    Communicator* etp = nullptr;     // expert-tensor-parallel group (outlives the layer); null or size 1:
                                     // none; else moe_ffn_hidden_size is split over it
    std::string token_dispatcher_type = "alltoall";  // with ep: "alltoall" or "allgather" (Megatron's
                                                      // moe_token_dispatcher_type; its default is allgather)
  };
  struct Saved : FeedForward::State {
    Router::Saved router;
    Router::Output routing;  // probs, routing map, tokens per expert, aux and z losses
    DispatchHandle handle;
    EtpHandle etp;           // expert tensor parallelism: the etp group's row counts
    GroupedExperts::Saved experts;
    SharedExperts::Saved shared;
  };

  Config cfg;
  Router router;
  GroupedExperts experts;
  std::optional<SharedExperts> shared_experts;
  std::unique_ptr<TokenDispatcher> dispatcher;
  std::optional<ExpertTensorParallel> etp;  // when Config::etp has size > 1

  explicit MoELayer(Config c);
  int64_t num_local_experts() const { return experts.cfg.num_experts; }
  int64_t local_expert_begin() const { return cfg.ep ? cfg.ep->rank() * num_local_experts() : 0; }
  void register_params(ParamTable& table, const std::string& name) override;  // "decoder.layers.3.mlp"

  // x (T, H) -> (T, H); seq_length is S of the (B, S) batch (sequence-level aux loss).
  Tensor forward(Context& ctx, const Tensor& x, int64_t seq_length, Saved& s);  // router counts update
  // dy (T, H) -> dx (T, H) (written); parameter gradients accumulate.
  Tensor backward(Context& ctx, const Tensor& dy, const Saved& s, float aux_grad_scale);

  // FeedForward: seq_length from the layout (uniform batches), aux_grad_scale = ctx.aux_loss_scale.
  std::unique_ptr<State> new_state() const override { return std::make_unique<Saved>(); }
  Tensor forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, State& s) override;
  Tensor backward(Context& ctx, const Tensor& dy, const State& s) override {
    return backward(ctx, dy, static_cast<const Saved&>(s), ctx.aux_loss_scale);
  }
};

}  // namespace foundry
