// Megatron-Core's MoE top-k router (megatron/core/transformer/moe/router.py TopKRouter and
// moe_utils.py topk_routing_with_score_function / group_limited_topk / apply_router_token_dropping),
// single rank. Formulas: shared/reference/megatron_moe.md §2.1-2.6.
//
//   x = x * noise, noise ~ Uniform(1 - eps, 1 + eps) elementwise (moe_input_jitter_eps; training only,
//       the router's input only: the experts see the un-jittered x; drawn by router_jitter_noise)
//   logits = x W^T (f32 GEMM, the rest in f64)
//   probs, map = top-k routing (score function, pre/post softmax, groups, expert bias, scaling)
//   capacity: C = ceil(T * k / E * capacity_factor); drop by probs or position; optional padding
//   losses (training only): load balancing (aux / seq_aux / global_aux, on the plain top-k of the
//   aux scores: no groups, bias or dropping) and z-loss, returned as values; their gradients enter
//   backward scaled by aux_grad_scale (MoEAuxLossAutoScaler).
//
// Token order: (T, H) rows are batch-major, t = b * seq_length + s (seq_aux_loss groups by sequence).
// Ties: top-k prefers the lower expert index; the "probs" drop policy prefers the earlier token;
// "position" keeps each expert's earliest routed tokens (then, when padding, the earliest
// unrouted ones as zero-probability fillers).
// Padding tokens (optional padding_mask, (T) u8, 1 = padding, Megatron's convention) are routed like
// any other but excluded from every load-balancing loss (aux scores and counts zeroed; the token
// count is the valid one: aux_loss T = valid tokens, seq_aux_loss T = valid tokens / B for every
// sequence, global_aux_loss T = this micro-batch's valid tokens, its running counts padding-free),
// from z_loss (mean over valid tokens) and from the expert-bias counts.
// Jitter: Megatron-Core's apply_input_jitter has no training check (it also jitters in eval); here
// it is training only, as Switch Transformer. The noise comes from ctx.rng (not torch's generator).
// Groups (RouterConfig::tp_cp, tp_dp_cp; Megatron router.py with tp_cp_group / tp_dp_cp_group and
// moe_utils.get_tokens_per_expert_and_token_count): when the layer's tokens are split over tp x cp
// (sequence parallelism), each rank holds only its tokens' part of the losses:
//   aux_loss:        n = sum over tp_cp of the counts, T = sum over tp_cp of the valid tokens
//                    (= T_loc |tp_cp| without padding), the scores' sum over this rank's tokens
//   z_loss:          coefficient / |tp_cp| (the mean over this rank's valid tokens)
//   global_aux_loss: the per-forward counts and T summed over tp_dp_cp before the running mean
//   seq_aux_loss:    with |tp_cp| > 1 not implemented (validate() refuses it)
// so the sum over the group of the per-rank losses (and of the router weight gradients; the weight
// is registered with tp_grad_sum) equals one process routing all the group's tokens (for the z-loss:
// when the ranks hold equal valid token counts, as Megatron). Counts are reduced in f32 (exact
// below 2^24 tokens).
#pragma once

#include <string>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/core/context.h"
#include "foundry/moe/load_balancing.h"
#include "foundry/nn/param.h"

namespace foundry {

struct RouterConfig {              // Megatron TransformerConfig names
  int64_t hidden = 0, num_experts = 0, topk = 2;
  std::string score_function = "softmax";  // softmax | sigmoid | sqrtsoftplus
  bool pre_softmax = false;                 // moe_router_pre_softmax
  int64_t num_groups = 0, group_topk = 0;   // moe_router_num_groups / moe_router_group_topk
  float topk_scaling_factor = 0.f;          // 0: none
  bool enable_expert_bias = false;
  float bias_update_rate = 1e-3f;
  std::vector<std::string> load_balancing_type = {"aux_loss"};  // aux_loss | seq_aux_loss | global_aux_loss | none
  std::vector<float> aux_loss_coeff = {0.f};  // one per type, or one for all
  float z_loss_coeff = 0.f;
  float input_jitter_eps = 0.f;             // moe_input_jitter_eps, in [0, 1); 0: no jitter
  float capacity_factor = 0.f;              // 0: dropless
  std::string drop_policy = "probs";        // probs | position
  bool pad_to_capacity = false;
  Init init = Init::normal(0.02f);
  Communicator* tp_cp = nullptr;     // aux_loss / z_loss group (outlives the router); null or size 1: local
  Communicator* tp_dp_cp = nullptr;  // global_aux_loss counts group; null or size 1: local

  void validate() const;  // throws naming the offending field
};

struct Router {
  RouterConfig cfg;
  Param weight;        // (E, H) f32 gate
  Tensor expert_bias;  // (E) f32 buffer (not a parameter), zeros; used for selection only
  Tensor local_tokens_per_expert;  // (E) f32, accumulated by training forwards for the bias update
  // global_aux_loss state: token counts summed over this global batch's micro-batches.
  std::vector<double> global_tokens_per_expert;
  int64_t global_aux_steps = 0;

  struct Output {
    Tensor probs;              // (T, E) f32, 0 where not routed or dropped
    Tensor routing_map;        // (T, E) u8 (1 = routed; with padding, every expert has exactly C)
    Tensor tokens_per_expert;  // (E) i64 after dropping / padding
    double aux_loss = 0;       // sum of the load-balancing losses (coefficients included)
    double z_loss = 0;
  };
  struct Saved {
    Tensor x;                         // (T, H) the GEMM's input: jittered when jitter applied
    Tensor jitter;                    // (T, H) the noise; undefined when no jitter was applied
    std::vector<double> logits;       // (T, E)
    std::vector<int64_t> idx;         // (T, k) selected experts
    std::vector<uint8_t> kept;        // (T, k) selection survived capacity dropping
    std::vector<double> dlogits_aux;  // (T, E) gradient of aux_loss + z_loss w.r.t. the logits
  };

  explicit Router(RouterConfig c);
  void register_params(ParamTable& table, const std::string& name);  // name = "...mlp.router"

  // seq_length: tokens per sequence for seq_aux_loss (0: all T tokens are one sequence).
  // Draws the jitter noise from ctx.rng (router_jitter_noise) when ctx.training and input_jitter_eps > 0.
  Output forward(Context& ctx, const Tensor& x, Saved& s, int64_t seq_length = 0, const Tensor& padding_mask = {});
  // dprobs (T, E) = dL/dprobs; aux_grad_scale multiplies the aux/z-loss gradients.
  // Returns dx (T, H) w.r.t. the un-jittered input, (dlogits W) * noise; weight.grad += dlogits^T x_jittered.
  // dx_accumulate (T, H) given: dx is added into it (+=, the GEMM's beta = 1 when there is no
  // jitter: no (T, H) temporary) and it is returned.
  Tensor backward(Context& ctx, const Tensor& dprobs, const Saved& s, float aux_grad_scale,
                  const Tensor& dx_accumulate = {});

  // Once per optimizer step: bias += rate * sign(mean(counts) - counts); counts reset.
  void update_expert_bias();
  // Once per global batch (Megatron's reset_model_temporary_tensors): clears the global_aux_loss counts.
  void reset_global_aux();

  int64_t capacity(int64_t tokens) const;  // ceil(T * k / E * capacity_factor)
};

// The input-jitter noise (T, H) f32: one rng.uniform_(noise, 1 - eps, 1 + eps) fill, so element
// (t, h) is value t * H + h of the stream at rng's offset, in [1 - eps, 1 + eps]; advances rng by
// ceil(T * H / 4) blocks. Router::forward calls it on ctx.rng; a copy of that rng reproduces it.
Tensor router_jitter_noise(Philox& rng, int64_t tokens, int64_t hidden, float eps);

}  // namespace foundry
