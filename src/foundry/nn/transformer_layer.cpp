#include "foundry/nn/transformer_layer.h"

#include "foundry/ops/elementwise.h"

namespace foundry {

TransformerLayer::TransformerLayer(Config c) : TransformerLayer(c, std::make_unique<MLP>(c.mlp)) {}

TransformerLayer::TransformerLayer(Config c, std::unique_ptr<FeedForward> ffn)
    : cfg(c),
      input_layernorm({.hidden = c.attention.hidden, .eps = c.norm_eps}),
      self_attention(c.attention),
      pre_mlp_layernorm({.hidden = c.attention.hidden, .eps = c.norm_eps}),
      mlp(std::move(ffn)) {
  FOUNDRY_CHECK(mlp != nullptr, "TransformerLayer: no feed-forward block");
}

void TransformerLayer::register_params(ParamTable& table, const std::string& name) {
  input_layernorm.register_params(table, name + ".input_layernorm");
  self_attention.register_params(table, name + ".self_attention");
  pre_mlp_layernorm.register_params(table, name + ".pre_mlp_layernorm");
  mlp->register_params(table, name + ".mlp");
}

Tensor TransformerLayer::forward(Context& ctx, const Tensor& x, const SequenceLayout& seq,
                                 Saved& s) const {
  Tensor a = self_attention.forward(ctx, input_layernorm.forward(ctx, x, s.input_norm), seq, s.attention);
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
  input_layernorm.backward(ctx, self_attention.backward(ctx, dx1, seq, s.attention), s.input_norm, dx);
  return dx;
}

}  // namespace foundry
