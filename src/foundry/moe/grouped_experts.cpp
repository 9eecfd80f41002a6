#include "foundry/moe/grouped_experts.h"

#include "foundry/ops/grouped_gemm.h"
#include "foundry/ops/moe_rows.h"

namespace foundry {

void GroupedExperts::register_params(ParamTable& table, const std::string& name) {
  FOUNDRY_CHECK(cfg.hidden > 0 && cfg.ffn > 0 && cfg.num_experts > 0,
                "GroupedExperts '{}': hidden {}, ffn {} and num_experts {} must be positive", name, cfg.hidden,
                cfg.ffn, cfg.num_experts);
  FOUNDRY_CHECK(cfg.ep_size >= 1 && cfg.ep_rank >= 0 && cfg.ep_rank < cfg.ep_size && cfg.etp_size >= 1 &&
                    cfg.etp_rank >= 0 && cfg.etp_rank < cfg.etp_size,
                "GroupedExperts '{}': ep rank {} of {}, etp rank {} of {}", name, cfg.ep_rank, cfg.ep_size,
                cfg.etp_rank, cfg.etp_size);
  // The full tensors (E, 2F, H) and (E, H, F), then this rank's shard of each.
  const int64_t E = cfg.num_experts * cfg.ep_size, F = cfg.ffn * cfg.etp_size, H = cfg.hidden;
  ParamSpec fc1{.name = name + ".linear_fc1.weight", .shape = {E, 2 * F, H}, .init = Init::normal(cfg.init_std),
                .tp_split_axis = 1, .expert_local = true};
  ParamSpec fc2{.name = name + ".linear_fc2.weight", .shape = {E, H, F}, .init = Init::normal(cfg.output_init_std),
                .tp_split_axis = 2, .expert_local = true};
  if (cfg.ep_size > 1) {
    shard_split(fc1, 0, cfg.ep_rank, cfg.ep_size, "ep");
    shard_split(fc2, 0, cfg.ep_rank, cfg.ep_size, "ep");
  }
  if (cfg.etp_size > 1) {
    shard_split_halves(fc1, 1, cfg.etp_rank, cfg.etp_size, "etp");  // [gate_q; up_q]
    shard_split(fc2, 2, cfg.etp_rank, cfg.etp_size, "etp");
  }
  table.add(linear_fc1, std::move(fc1));
  table.add(linear_fc2, std::move(fc2));
}

Tensor GroupedExperts::forward(Context& ctx, const Tensor& x, const Tensor& probs, const Tensor& tokens_per_expert,
                               Saved& s) const {
  const int64_t N = x.size(0), F = cfg.ffn;
  const bool bf16 = cfg.compute == DType::bf16;
  s.x = bf16 ? x.to(DType::bf16) : x;
  s.probs = probs;
  s.tokens_per_expert = tokens_per_expert;
  if (bf16) s.w1 = linear_fc1.value.to(DType::bf16), s.w2 = linear_fc2.value.to(DType::bf16);
  s.h = Tensor::empty({N, 2 * F}, DType::f32, ctx.device);
  grouped_gemm({.a = s.x, .b = bf16 ? s.w1 : linear_fc1.value, .c = s.h, .group_sizes = tokens_per_expert,
                .trans_b = true});
  Tensor w = Tensor::empty({N, F}, DType::f32, ctx.device);
  weighted_swiglu_forward({.h = s.h, .s = probs, .y = w});  // p * silu(gate) * up
  s.w = bf16 ? w.to(DType::bf16) : w;
  Tensor y = Tensor::empty({N, cfg.hidden}, DType::f32, ctx.device);
  grouped_gemm({.a = s.w, .b = bf16 ? s.w2 : linear_fc2.value, .c = y, .group_sizes = tokens_per_expert,
                .trans_b = true});
  return y;
}

GroupedExperts::Grads GroupedExperts::backward(Context& ctx, const Tensor& dy_in, const Saved& s) {
  const int64_t N = dy_in.size(0), F = cfg.ffn;
  const bool bf16 = cfg.compute == DType::bf16;
  const Tensor dy = bf16 ? dy_in.to(DType::bf16) : dy_in;
  // fc2: dw = dy W2 (per expert); W2.grad += dy^T w.
  Tensor dw = Tensor::empty({N, F}, DType::f32, ctx.device);
  grouped_gemm({.a = dy, .b = bf16 ? s.w2 : linear_fc2.value, .c = dw, .group_sizes = s.tokens_per_expert,
                .trans_b = false});
  grouped_gemm({.a = dy, .b = s.w, .c = linear_fc2.grad, .group_sizes = s.tokens_per_expert, .weight_grad = true,
                .beta = 1.f});
  // w = p a, a = swiglu(h): dprobs = rowsum(dw * a), dh = swiglu'(h) (p dw), one fused pass.
  Grads g;
  g.dprobs = Tensor::empty({N}, DType::f32, ctx.device);
  Tensor dh = Tensor::empty({N, 2 * F}, DType::f32, ctx.device);
  weighted_swiglu_backward({.h = s.h, .s = s.probs, .dy = dw, .dh = dh, .ds = g.dprobs});
  if (bf16) dh = dh.to(DType::bf16);
  // fc1: dx = dh W1; W1.grad += dh^T x.
  g.dx = Tensor::empty({N, cfg.hidden}, DType::f32, ctx.device);
  grouped_gemm({.a = dh, .b = bf16 ? s.w1 : linear_fc1.value, .c = g.dx, .group_sizes = s.tokens_per_expert,
                .trans_b = false});
  grouped_gemm({.a = dh, .b = s.x, .c = linear_fc1.grad, .group_sizes = s.tokens_per_expert, .weight_grad = true,
                .beta = 1.f});
  return g;
}

}  // namespace foundry
