// Self-attention (Megatron-Core SelfAttention semantics): fused QKV projection in Megatron's
// grouped layout, optional q/k RMSNorm over the head dimension (Megatron's qk_layernorm,
// Hugging Face Qwen3's q_norm / k_norm), rotary embedding on q and k, grouped-query attention
// (blocked, online softmax), output projection. Optional QKV bias (Megatron's --add-qkv-bias,
// Hugging Face Qwen2's q_proj / k_proj / v_proj biases) and Llama 3 RoPE frequency scaling
// (ops/rope.h).
//   qkv = x Wqkv^T (+ b_qkv);  q, k, v = split(qkv)
//   qk_layernorm: q_h = RMSNorm_q(q_h), k_h = RMSNorm_k(k_h) per token and head, weights (HD)
//   q, k = rope(q), rope(k)
//   o = softmax(q k^T / sqrt(HD) + causal mask) v;   y = o Wproj^T
// backward of the bias: b_qkv.grad += sum over tokens of dqkv (ops/elementwise.h bias_add).
#pragma once

#include "foundry/core/context.h"
#include "foundry/nn/linear.h"
#include "foundry/nn/rmsnorm.h"
#include "foundry/ops/rope.h"

namespace foundry {

// Where each token sits: its position (for RoPE) and which packed sequence it belongs to.
struct SequenceLayout {
  Tensor positions;   // (T) i32
  Tensor cu_seqlens;  // (num_seqs + 1) i32; empty: `batch` sequences of equal length
  int64_t batch = 1;

  // `batch` sequences of `seq` tokens each, positions 0..seq-1.
  static SequenceLayout uniform(int64_t batch, int64_t seq);
  // Packed documents: cu_seqlens (num_seqs + 1); positions restart at each document.
  static SequenceLayout packed(const std::vector<int32_t>& cu_seqlens);
};

struct Attention {
  struct Config {
    int64_t hidden = 0;        // H
    int64_t num_heads = 0;     // NH
    int64_t num_kv_heads = 0;  // NKV (0: = NH)
    int64_t head_dim = 0;      // HD (0: H / NH)
    float rope_theta = 10000.f;
    float rotary_percent = 1.f;
    DType compute = DType::f32;
    float init_std = 0.02f;
    float output_init_std = 0.02f;  // Megatron scales it by 1 / sqrt(2 L)
    bool qk_layernorm = false;      // RMSNorm on each q and k head before RoPE
    float qk_layernorm_eps = 1e-5f; // Megatron: layernorm_epsilon
    bool add_qkv_bias = false;      // bias on the fused QKV projection (Qwen2)
    RopeScaling rope_scaling;       // Llama 3 RoPE frequency scaling (off by default)
  };
  struct Saved {
    Linear::Saved qkv_in;
    RMSNorm::Saved q_norm, k_norm;  // qk_layernorm: inputs (T NH, HD), (T NKV, HD) and rstd
    Tensor q, k, v;  // (T, NH, HD), (T, NKV, HD) x2, after RoPE
    Tensor out;      // (T, NH, HD)
    Tensor lse;      // (T, NH)
    Linear::Saved proj_in;
  };

  Config cfg;
  Linear linear_qkv;   // (NKV (G + 2) HD, H)
  Param linear_qkv_bias;  // (NKV (G + 2) HD), rows as linear_qkv's; "linear_qkv.bias", only when cfg.add_qkv_bias
  RMSNorm q_layernorm; // (HD), registered only when cfg.qk_layernorm
  RMSNorm k_layernorm; // (HD), registered only when cfg.qk_layernorm
  Linear linear_proj;  // (H, NH HD)

  explicit Attention(Config c);
  void register_params(ParamTable& table, const std::string& name);  // "...self_attention"

  Tensor forward(Context& ctx, const Tensor& x, const SequenceLayout& seq, Saved& s) const;  // (T, H) -> (T, H)
  Tensor backward(Context& ctx, const Tensor& dy, const SequenceLayout& seq, const Saved& s);  // -> dx (T, H), written

  // Inference with a key/value cache (nothing saved for backward): x (B Tq, H) holds Tq new
  // tokens of each of `batch` sequences, at positions past_len .. past_len + Tq - 1. Their keys
  // (after RoPE) and values are appended to k_cache / v_cache (B, Smax, NKV, HD) at those
  // positions, and each query attends causally to the cached past and the new tokens.
  // -> (B Tq, H)
  Tensor forward_inference(Context& ctx, const Tensor& x, int64_t batch, int64_t past_len,
                           const Tensor& k_cache, const Tensor& v_cache) const;
};

}  // namespace foundry
