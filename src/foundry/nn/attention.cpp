#include "foundry/nn/attention.h"

#include "foundry/ops/attention.h"
#include "foundry/ops/elementwise.h"
#include "foundry/ops/layout.h"
#include "foundry/ops/rope.h"

namespace foundry {

SequenceLayout SequenceLayout::uniform(int64_t batch, int64_t seq) {
  SequenceLayout l;
  l.batch = batch;
  l.positions = Tensor::empty({batch * seq}, DType::i32);
  int32_t* p = l.positions.ptr<int32_t>();
  for (int64_t t = 0; t < batch * seq; ++t) p[t] = static_cast<int32_t>(t % seq);
  return l;
}

SequenceLayout SequenceLayout::packed(const std::vector<int32_t>& cu) {
  FOUNDRY_CHECK(cu.size() >= 2 && cu.front() == 0, "SequenceLayout: cu_seqlens must start at 0");
  SequenceLayout l;
  l.batch = static_cast<int64_t>(cu.size()) - 1;
  l.cu_seqlens = Tensor::from<int32_t>({static_cast<int64_t>(cu.size())}, cu);
  l.positions = Tensor::empty({cu.back()}, DType::i32);
  int32_t* p = l.positions.ptr<int32_t>();
  for (size_t d = 0; d + 1 < cu.size(); ++d) {
    FOUNDRY_CHECK(cu[d] <= cu[d + 1], "SequenceLayout: cu_seqlens not monotone at {}", d);
    for (int32_t t = cu[d]; t < cu[d + 1]; ++t) p[t] = t - cu[d];
  }
  return l;
}

namespace {
Attention::Config resolve(Attention::Config c) {
  if (c.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
  FOUNDRY_CHECK(c.num_heads > 0 && c.hidden > 0, "Attention: hidden {} and num_heads {} must be positive",
                c.hidden, c.num_heads);
  if (c.head_dim == 0) {
    FOUNDRY_CHECK(c.hidden % c.num_heads == 0, "Attention: hidden {} is not divisible by num_heads {}",
                  c.hidden, c.num_heads);
    c.head_dim = c.hidden / c.num_heads;
  }
  FOUNDRY_CHECK(c.num_heads % c.num_kv_heads == 0,
                "Attention: num_attention_heads {} is not a multiple of num_query_groups {}",
                c.num_heads, c.num_kv_heads);
  return c;
}

RopeArgs rope_args(const Attention::Config& c, const Tensor& positions) {
  return {.positions = positions, .theta = c.rope_theta, .rotary_percent = c.rotary_percent,
          .scaling = c.rope_scaling};
}
}  // namespace

Attention::Attention(Config c)
    : cfg(resolve(c)),
      linear_qkv({.in = cfg.hidden, .out = (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.head_dim,
                  .init = Init::normal(cfg.init_std), .compute = cfg.compute, .tp_split_axis = 0}),
      q_layernorm({.hidden = cfg.head_dim, .eps = cfg.qk_layernorm_eps}),
      k_layernorm({.hidden = cfg.head_dim, .eps = cfg.qk_layernorm_eps}),
      linear_proj({.in = cfg.num_heads * cfg.head_dim, .out = cfg.hidden,
                   .init = Init::normal(cfg.output_init_std), .compute = cfg.compute,
                   .tp_split_axis = 1}) {}

void Attention::register_params(ParamTable& table, const std::string& name) {
  linear_qkv.register_params(table, name + ".linear_qkv");
  if (cfg.add_qkv_bias)  // Megatron's linear_qkv bias: zero init, no weight decay, split like the weight's rows
    table.add(linear_qkv_bias, {.name = name + ".linear_qkv.bias", .shape = {linear_qkv.cfg.out},
                                .init = Init::zeros(), .weight_decay = false, .tp_split_axis = 0});
  if (cfg.qk_layernorm) {
    q_layernorm.register_params(table, name + ".q_layernorm");
    k_layernorm.register_params(table, name + ".k_layernorm");
  }
  linear_proj.register_params(table, name + ".linear_proj");
}

Tensor Attention::forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, Saved& s) const {
  const int64_t T = x.size(0), NH = cfg.num_heads, NKV = cfg.num_kv_heads, HD = cfg.head_dim;
  Tensor qkv = linear_qkv.forward(ctx, x, s.qkv_in);  // (T, NKV (G + 2) HD)
  if (cfg.add_qkv_bias) bias_add_forward({.x = qkv, .bias = linear_qkv_bias.value, .out = qkv});
  s.q = Tensor::empty({T, NH, HD}, DType::f32, ctx.device);
  s.k = Tensor::empty({T, NKV, HD}, DType::f32, ctx.device);
  s.v = Tensor::empty({T, NKV, HD}, DType::f32, ctx.device);
  qkv_split_forward({.num_heads = NH, .num_kv_heads = NKV, .qkv = qkv, .q = s.q, .k = s.k, .v = s.v});
  qkv = Tensor();  // free before attention
  if (cfg.qk_layernorm) {  // the norms keep the split q, k as their inputs; s.q, s.k become new tensors
    s.q = q_layernorm.forward(ctx, s.q.reshape({T * NH, HD}), s.q_norm).reshape({T, NH, HD});
    s.k = k_layernorm.forward(ctx, s.k.reshape({T * NKV, HD}), s.k_norm).reshape({T, NKV, HD});
  }
  RopeArgs rope = rope_args(cfg, seq.positions);
  rope.x = rope.out = s.q;
  rope_forward(rope);
  rope.x = rope.out = s.k;
  rope_forward(rope);
  s.out = Tensor::empty({T, NH, HD}, DType::f32, ctx.device);
  s.lse = Tensor::empty({T, NH}, DType::f32, ctx.device);
  attention_forward({.q = s.q, .k = s.k, .v = s.v, .cu_seqlens = seq.cu_seqlens, .batch = seq.batch,
                     .causal = true, .out = s.out, .lse = s.lse});
  return linear_proj.forward(ctx, s.out.reshape({T, NH * HD}), s.proj_in);  // (T, H)
}

Tensor Attention::forward_inference(Context& ctx, const Tensor& x, int64_t batch, int64_t past_len,
                                   const Tensor& k_cache, const Tensor& v_cache) const {
  const int64_t T = x.size(0), NH = cfg.num_heads, NKV = cfg.num_kv_heads, HD = cfg.head_dim;
  FOUNDRY_CHECK(batch >= 1 && T % batch == 0,
                "Attention: {} tokens are not {} sequences of equal length", T, batch);
  const int64_t Tq = T / batch;
  Linear::Saved unused;
  Tensor qkv = linear_qkv.forward(ctx, x, unused);  // (B Tq, NKV (G + 2) HD)
  if (cfg.add_qkv_bias) bias_add_forward({.x = qkv, .bias = linear_qkv_bias.value, .out = qkv});
  Tensor q = Tensor::empty({T, NH, HD}, DType::f32, ctx.device);
  Tensor k = Tensor::empty({T, NKV, HD}, DType::f32, ctx.device);
  Tensor v = Tensor::empty({T, NKV, HD}, DType::f32, ctx.device);
  qkv_split_forward({.num_heads = NH, .num_kv_heads = NKV, .qkv = qkv, .q = q, .k = k, .v = v});
  if (cfg.qk_layernorm) {
    RMSNorm::Saved norm_unused;
    q = q_layernorm.forward(ctx, q.reshape({T * NH, HD}), norm_unused).reshape({T, NH, HD});
    k = k_layernorm.forward(ctx, k.reshape({T * NKV, HD}), norm_unused).reshape({T, NKV, HD});
  }
  Tensor positions = Tensor::empty({T}, DType::i32);  // past_len + i for token i of each sequence
  int32_t* p = positions.ptr<int32_t>();
  for (int64_t t = 0; t < T; ++t) p[t] = static_cast<int32_t>(past_len + t % Tq);
  RopeArgs rope = rope_args(cfg, positions);
  rope.x = rope.out = q;
  rope_forward(rope);
  rope.x = rope.out = k;
  rope_forward(rope);
  Tensor out = Tensor::empty({T, NH, HD}, DType::f32, ctx.device);
  attention_kv_forward({.q = q.reshape({batch, Tq, NH, HD}),
                        .k_new = k.reshape({batch, Tq, NKV, HD}),
                        .v_new = v.reshape({batch, Tq, NKV, HD}), .k_cache = k_cache,
                        .v_cache = v_cache, .past_len = past_len,
                        .out = out.reshape({batch, Tq, NH, HD})});
  return linear_proj.forward(ctx, out.reshape({T, NH * HD}), unused);  // (B Tq, H)
}

Tensor Attention::backward(Context& ctx, const Tensor& dy, const SequenceLayout& seq, const Saved& s) {
  const int64_t T = dy.size(0), NH = cfg.num_heads, NKV = cfg.num_kv_heads, HD = cfg.head_dim;
  Tensor dout = linear_proj.backward(ctx, dy, s.proj_in).reshape({T, NH, HD});
  Tensor dq = Tensor::empty({T, NH, HD}, DType::f32, ctx.device), dk = Tensor::empty({T, NKV, HD}, DType::f32, ctx.device), dv = Tensor::empty({T, NKV, HD}, DType::f32, ctx.device);
  attention_backward({.q = s.q, .k = s.k, .v = s.v, .cu_seqlens = seq.cu_seqlens, .batch = seq.batch,
                      .causal = true, .out = s.out, .lse = s.lse, .dout = dout, .dq = dq, .dk = dk,
                      .dv = dv});
  RopeArgs rope = rope_args(cfg, seq.positions);
  rope.dy = rope.dx = dq;
  rope_backward(rope);
  rope.dy = rope.dx = dk;
  rope_backward(rope);
  if (cfg.qk_layernorm) {  // RMSNorm::backward accumulates into its dx: start from zeros
    Tensor dq_in = Tensor::zeros({T * NH, HD}, DType::f32, ctx.device);
    Tensor dk_in = Tensor::zeros({T * NKV, HD}, DType::f32, ctx.device);
    q_layernorm.backward(ctx, dq.reshape({T * NH, HD}), s.q_norm, dq_in);
    k_layernorm.backward(ctx, dk.reshape({T * NKV, HD}), s.k_norm, dk_in);
    dq = dq_in.reshape({T, NH, HD});
    dk = dk_in.reshape({T, NKV, HD});
  }
  Tensor dqkv = Tensor::empty({T, (NH + 2 * NKV) * HD}, DType::f32, ctx.device);
  qkv_split_backward({.num_heads = NH, .num_kv_heads = NKV, .qkv = dqkv, .q = dq, .k = dk, .v = dv});
  if (cfg.add_qkv_bias) bias_add_backward({.dout = dqkv, .dbias = linear_qkv_bias.grad});  // += column sums
  return linear_qkv.backward(ctx, dqkv, s.qkv_in);
}

}  // namespace foundry
