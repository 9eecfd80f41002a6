// Dense -> MoE upcycling (He et al. 2024, "Upcycling Large Language Models into Mixture of Experts",
// arXiv 2410.07524, §2.3 and App. A; Megatron-Core megatron/core/transformer/moe/upcycling_utils.py;
// shared/reference/upcycling_longctx.md Part A). Notation: dense SwiGLU MLP with intermediate size F,
// granularity G (expert intermediate f = F / G), N experts (expansion R = N / G), top-T routing.
//
// The conversion of one parameter table (any parallel layout: only the blocks this rank holds):
//   shard s in [0, G):  dense neurons [s f, (s+1) f)  (the GLOBAL contiguous split: the same full
//                       MoE model under every tensor / expert layout)
//   expert e in [0, N): holds shard e mod G:
//     experts.linear_fc1[e] (2f, H) = [ a * gate rows of shard s ; b * up rows of shard s ]
//     experts.linear_fc2[e] (H, f)  =   d * fc2 columns of shard s
//   router (N, H):      the MoE model's own init W0 (already in the table) regrouped W[e] = W0[e div G]
//                       ("virtual groups": the G experts of a group share one logit and hold every
//                       shard once; G = 1: untouched). Expert bias buffer: zeros.
//   everything else:    copied from the dense tensor of the same name (sharded ones take their blocks).
// Weight scaling (paper eq. 2, Megatron _get_moe_activation_scale): the expert OUTPUT must be
// multiplied by the activation scale c to restore the dense output at uniform router probabilities:
//   softmax-then-topk (pre_softmax):  c = R G^2 / T        topk-then-softmax:  c = G
// and SwiGLU, y = W2 (silu(Wg x) * (Wu x)), is homogeneous of degree 1 in Wu and in W2 only, so
//   scaling_split "linear" (default): a = 1, b = d = sqrt(c)  — exact (reference A.4 [V])
//   scaling_split "equal" (Megatron / the paper): a = b = d = c^(1/3) — not exact for SwiGLU
//     (silu(s z) != s silu(z)); the paper found it works as well in training.
// With topk-then-softmax and T % G == 0 the upcycled model equals the dense one (whole groups are
// selected; each selected expert gets weight e^{l_j} / (G sum_J e^{l_j'})); with softmax-then-topk
// the MoE layer gives kappa(x) dense(x), kappa = (R G / T) sum_{j in J} P_j, 1 <= kappa <= R G / T.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "foundry/models/gpt/gpt_model.h"

namespace foundry {

struct UpcycleOptions {
  int64_t num_experts = 0;   // N
  int64_t topk = 0;          // T
  int64_t granularity = 1;   // G: expert intermediate = F / G
  bool pre_softmax = false;  // router order: true = softmax-then-topk (Megatron moe_router_pre_softmax)
  // "auto" | "none" | a positive number: the activation scale c, the factor on each expert's OUTPUT
  // (auto: R G^2 / T softmax-then-topk, G topk-then-softmax; none: 1).
  std::string weight_scaling = "auto";
  std::string scaling_split = "linear";  // linear (gate 1, up and fc2 sqrt c) | equal (all c^(1/3))
};

// The scale c the options give, and the factors on the three expert weights.
struct UpcycleScales {
  double c = 1;         // on the expert output
  double gate = 1;      // on the gate rows of experts.linear_fc1
  double up = 1;        // on the up rows of experts.linear_fc1
  double fc2 = 1;       // on experts.linear_fc2
};
UpcycleScales upcycle_scales(const UpcycleOptions& o);
// Checks a weight_scaling / scaling_split value; errors name `key` (a CLI option or config key).
void check_weight_scaling(const std::string& value, const std::string& key);
void check_scaling_split(const std::string& value, const std::string& key);

// The MoE config of an upcycled dense config (resolved): num_moe_experts N, moe_ffn_hidden_size F/G,
// moe_router_topk T, moe_router_pre_softmax, every layer MoE, no shared experts, all else copied.
// Errors (naming the option and the values): the config is already MoE, N < 1, T < 1, T > N,
// G < 1, F % G, N % G, and T % G when G > 1 (virtual groups need whole groups).
GPTConfig upcycled_config(const GPTConfig& dense_resolved, const UpcycleOptions& o);

// The options that turn `dense` into `moe` (both resolved; online upcycling): N, T and the router
// order from the MoE config, G = F_dense / moe_ffn_hidden_size. Every non-MLP field must match
// (errors name the model.* key and both values), the MoE config must route by softmax without
// groups and have no shared experts.
UpcycleOptions upcycle_options_for(const GPTConfig& dense, const GPTConfig& moe, const std::string& weight_scaling,
                                   const std::string& scaling_split);

// Where the dense tensors come from: full tensors by name, f32 (undefined Tensor: not there).
struct DenseSource {
  std::string description;  // for errors, e.g. "dense checkpoint 'runs/x/checkpoints/iter_0000100'"
  std::function<Tensor(const std::string& name)> read;
};
// The tensors of a model's table (every parameter unsharded: a one-process model). From a
// checkpoint: train/upcycling.h dense_checkpoint_source.
DenseSource dense_source_of(const ParamTable& dense);

// Fills every parameter and buffer of `moe` (a GPTModel's table of config moe_cfg, any layout,
// initialised from its seed) from the dense tensors as described above. Reads only the dense
// tensors this table needs. Returns the scales used.
UpcycleScales upcycle_params(ParamTable& moe, const GPTConfig& moe_cfg, const UpcycleOptions& o,
                             const DenseSource& dense);
inline UpcycleScales upcycle_model(GPTModel& moe, const UpcycleOptions& o, const DenseSource& dense) {
  return upcycle_params(moe.params(), moe.config(), o, dense);
}

}  // namespace foundry
