#include "foundry/nn/parallel_attention.h"

#include "foundry/nn/parallel_linear.h"

namespace foundry {

namespace {
Attention::Config local_config(Attention::Config c, const Communicator& tp) {
  const int64_t p = tp.size();
  if (c.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
  FOUNDRY_CHECK(c.num_heads > 0 && c.num_heads % p == 0 && c.num_kv_heads % p == 0,
                "ParallelAttention: num_attention_heads {} and num_query_groups {} must be divisible by "
                "the tensor-parallel size {} (group '{}')", c.num_heads, c.num_kv_heads, p, tp.name());
  if (c.head_dim == 0) {
    FOUNDRY_CHECK(c.hidden % c.num_heads == 0, "ParallelAttention: hidden {} is not divisible by "
                  "num_heads {}", c.hidden, c.num_heads);
    c.head_dim = c.hidden / c.num_heads;
  }
  c.num_heads /= p;
  c.num_kv_heads /= p;
  return c;
}
}  // namespace

ParallelAttention::ParallelAttention(Config c, Communicator& tp_group)
    : cfg(c), tp(&tp_group), local(local_config(c.attn, tp_group)) {}

void ParallelAttention::register_params(ParamTable& table, const std::string& name) {
  local.register_params(table, name);
  const int r = tp->rank(), p = tp->size();
  ParamSpec& qkv = table.edit_spec(local.linear_qkv.weight.index);  // this rank's query groups' rows
  qkv.shape[0] *= p;
  shard_split(qkv, 0, r, p, "tp");
  if (cfg.attn.add_qkv_bias) {  // the same rows of the bias (NKV (G + 2) HD)
    ParamSpec& bias = table.edit_spec(local.linear_qkv_bias.index);
    bias.shape[0] *= p;
    shard_split(bias, 0, r, p, "tp");
  }
  ParamSpec& proj = table.edit_spec(local.linear_proj.weight.index);  // its heads' columns
  proj.shape[1] *= p;
  shard_split(proj, 1, r, p, "tp");
  if (cfg.attn.qk_layernorm)  // replicated, each rank's gradient from its own heads only
    for (Param* w : {&local.q_layernorm.weight, &local.k_layernorm.weight}) table.edit_spec(w->index).tp_grad_sum = true;
}

Tensor ParallelAttention::forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, Saved& s) const {
  const Tensor xf = cfg.sequence_parallel ? all_gather_tokens(*tp, x) : x;  // (N, H)
  Tensor y = local.forward(ctx, xf, seq, s);  // (N, H) partial sum over the heads of this rank
  if (cfg.sequence_parallel) return reduce_scatter_tokens(*tp, y);  // (N/P, H)
  tp->all_reduce(y);
  return y;
}

Tensor ParallelAttention::backward(Context& ctx, const Tensor& dy, const SequenceLayout& seq, const Saved& s) {
  const Tensor dyf = cfg.sequence_parallel ? all_gather_tokens(*tp, dy) : dy;  // (N, H)
  Tensor dx = local.backward(ctx, dyf, seq, s);  // (N, H) partial
  if (cfg.sequence_parallel) return reduce_scatter_tokens(*tp, dx);
  tp->all_reduce(dx);
  return dx;
}

}  // namespace foundry
