#include "foundry/nn/transformer_layer.h"

#include "foundry/ops/elementwise.h"

namespace foundry {

namespace {
std::unique_ptr<FeedForward> dense_mlp(const TransformerLayer::Config& c) {
  if (!c.tp) return std::make_unique<MLP>(c.mlp);
  return std::make_unique<ParallelMLP>(
      ParallelMLP::Config{.hidden = c.mlp.hidden, .ffn = c.mlp.ffn, .compute = c.mlp.compute,
                          .init_std = c.mlp.init_std, .output_init_std = c.mlp.output_init_std,
                          .sequence_parallel = c.sequence_parallel},
      *c.tp);
}
}  // namespace

TransformerLayer::TransformerLayer(Config c) : TransformerLayer(c, dense_mlp(c)) {}

TransformerLayer::TransformerLayer(Config c, std::unique_ptr<FeedForward> ffn)
    : cfg(c),
      input_layernorm({.hidden = c.attention.hidden, .eps = c.norm_eps}),
      self_attention(c.attention),
      pre_mlp_layernorm({.hidden = c.attention.hidden, .eps = c.norm_eps}),
      mlp(std::move(ffn)) {
  FOUNDRY_CHECK(mlp != nullptr, "TransformerLayer: no feed-forward block");
  FOUNDRY_CHECK(c.tp || !c.sequence_parallel, "TransformerLayer: sequence parallelism needs a tensor-parallel group");
  if (c.tp) parallel_attention.emplace(ParallelAttention::Config{.attn = c.attention, .sequence_parallel = c.sequence_parallel}, *c.tp);
}

void TransformerLayer::register_params(ParamTable& table, const std::string& name) {
  input_layernorm.register_params(table, name + ".input_layernorm");
  if (parallel_attention) parallel_attention->register_params(table, name + ".self_attention");
  else self_attention.register_params(table, name + ".self_attention");
  pre_mlp_layernorm.register_params(table, name + ".pre_mlp_layernorm");
  mlp->register_params(table, name + ".mlp");
  if (cfg.sequence_parallel)  // the norms see this rank's tokens only
    for (Param* w : {&input_layernorm.weight, &pre_mlp_layernorm.weight}) table.edit_spec(w->index).tp_grad_sum = true;
}

Tensor TransformerLayer::forward(Context& ctx, const Tensor& x, const SequenceLayout& seq,
                                 Saved& s) const {
  const Tensor n = input_layernorm.forward(ctx, x, s.input_norm);
  Tensor a = parallel_attention ? parallel_attention->forward(ctx, n, seq, s.attention)
                                : self_attention.forward(ctx, n, seq, s.attention);
  Tensor x1 = Tensor::empty(x.shape(), DType::f32, x.device());
  add_forward({.a = x, .b = a, .out = x1});  // x1 = x + attn
  s.mlp = mlp->new_state();
  Tensor m = mlp->forward(ctx, pre_mlp_layernorm.forward(ctx, x1, s.pre_mlp_norm), seq, *s.mlp);
  add_forward({.a = x1, .b = m, .out = m});  // out = x1 + mlp (in place)
  return m;
}

Tensor TransformerLayer::forward_inference(Context& ctx, const Tensor& x, int64_t batch,
                                           int64_t past_len, const Tensor& k_cache,
                                           const Tensor& v_cache) const {
  FOUNDRY_CHECK(!cfg.tp, "TransformerLayer: inference with a key/value cache is not supported with tensor parallelism");
  RMSNorm::Saved norm_unused;
  Tensor a = self_attention.forward_inference(ctx, input_layernorm.forward(ctx, x, norm_unused),
                                              batch, past_len, k_cache, v_cache);
  add_forward({.a = x, .b = a, .out = a});  // x1 = x + attn (in place)
  const std::unique_ptr<FeedForward::State> mlp_unused = mlp->new_state();
  // The FFN reads only the sequence structure (batch of equal-length rows), not positions.
  const SequenceLayout rows{.batch = batch};
  Tensor m = mlp->forward(ctx, pre_mlp_layernorm.forward(ctx, a, norm_unused), rows, *mlp_unused);
  add_forward({.a = a, .b = m, .out = m});  // out = x1 + mlp (in place)
  return m;
}

Tensor TransformerLayer::backward(Context& ctx, const Tensor& dout, const SequenceLayout& seq,
                                  const Saved& s) {
  // d x1 = dout + RMSNorm'(x1)^T MLP'^T dout
  Tensor dx1 = dout.clone();
  pre_mlp_layernorm.backward(ctx, mlp->backward(ctx, dout, *s.mlp), s.pre_mlp_norm, dx1);
  // d x = dx1 + RMSNorm'(x)^T Attention'^T dx1
  Tensor dx = dx1.clone();
  input_layernorm.backward(ctx,
                           parallel_attention ? parallel_attention->backward(ctx, dx1, seq, s.attention)
                                              : self_attention.backward(ctx, dx1, seq, s.attention),
                           s.input_norm, dx);
  return dx;
}

}  // namespace foundry
