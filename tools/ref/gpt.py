"""Reference GPT (Llama-style dense decoder) in plain PyTorch, float32, with Megatron-Core
parameter names and layouts. This is the model that foundry's models/gpt is checked against
(tests/parity) through the fixtures written by write_gpt_fixture.py.

Written for obviousness, not speed: every formula is spelled out. Runs on Debian's python3-torch
(1.13): no torch.compile, no F.scaled_dot_product_attention.

Shapes use foundry's letters: B batch, S sequence, H hidden, NH heads, NKV kv heads,
G = NH / NKV query heads per kv head, HD = H / NH head dim, F ffn, V vocab, L layers.

Formulas
  RMSNorm (Zhang & Sennrich 2019):  y = x / sqrt(mean(x^2) + eps) * w,            eps = 1e-5
  qk norm (optional, qk_norm=True; Megatron-Core qk_layernorm, HF Qwen3Attention q_norm / k_norm):
      q_h = RMSNorm(q_h, w_q), k_h = RMSNorm(k_h, w_k) over HD for every head, before RoPE;
      w_q, w_k (HD) shared by all heads, same eps as the other norms.
  RoPE (Su et al. 2021), rotate-half layout over the full head dim (Megatron / HF Llama):
      inv_freq[i] = theta^(-2i / HD), i in [0, HD/2);  angle[p, i] = p * inv_freq[i]
      cos = cat(cos(angle), cos(angle)), sin likewise               (S, HD)
      rope(x) = x * cos + rotate_half(x) * sin,  rotate_half([x1, x2]) = [-x2, x1]
  Attention: causal softmax(q k^T / sqrt(HD)) v, query head h reads kv head h // G (GQA).
  SwiGLU MLP (Shazeer 2020): fc2(silu(gate) * up), [gate, up] = fc1(x) split along rows.
  Layer (pre-norm):  x = x + proj(attn(rmsnorm(x)));  x = x + fc2(swiglu(fc1(rmsnorm(x))))
  Logits: output_layer(final_norm(x)) (or the embedding matrix when tied).
  Loss: mean cross-entropy over all B*S tokens.

Parameter layouts (Megatron-Core, megatron/core/transformer/attention.py):
  linear_qkv.weight ((NH + 2 NKV) HD, H): rows are NKV groups; group j holds
      [G query heads (G HD rows) | key head j (HD rows) | value head j (HD rows)],
      query head h = j * G + g.
  q_layernorm.weight, k_layernorm.weight (HD): only with qk_norm.
  linear_fc1.weight (2F, H): rows [0, F) gate, [F, 2F) up.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab: int = 256         # V
    hidden: int = 64         # H
    layers: int = 2          # L
    heads: int = 4           # NH
    kv_heads: int = 2        # NKV
    ffn: int = 128           # F
    tied: bool = False       # output head shares embedding.word_embeddings.weight
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    init_std: float = 0.02
    qk_norm: bool = False    # RMSNorm over HD on each q and k head before RoPE (Qwen3)

    @property
    def head_dim(self) -> int:  # HD
        assert self.hidden % self.heads == 0, "hidden must be a multiple of heads"
        return self.hidden // self.heads

    @property
    def group(self) -> int:  # G
        assert self.heads % self.kv_heads == 0, "heads must be a multiple of kv_heads"
        return self.heads // self.kv_heads


def param_shapes(cfg: GPTConfig) -> dict:
    """Every parameter name -> shape, in the canonical order (the order of the fixtures)."""
    V, H, F_, HD = cfg.vocab, cfg.hidden, cfg.ffn, cfg.head_dim
    NH, NKV = cfg.heads, cfg.kv_heads
    shapes = {"embedding.word_embeddings.weight": (V, H)}
    for i in range(cfg.layers):
        p = f"decoder.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (H,)
        shapes[p + "self_attention.linear_qkv.weight"] = ((NH + 2 * NKV) * HD, H)
        if cfg.qk_norm:
            shapes[p + "self_attention.q_layernorm.weight"] = (HD,)
            shapes[p + "self_attention.k_layernorm.weight"] = (HD,)
        shapes[p + "self_attention.linear_proj.weight"] = (H, NH * HD)
        shapes[p + "pre_mlp_layernorm.weight"] = (H,)
        shapes[p + "mlp.linear_fc1.weight"] = (2 * F_, H)
        shapes[p + "mlp.linear_fc2.weight"] = (H, F_)
    shapes["decoder.final_layernorm.weight"] = (H,)
    if not cfg.tied:
        shapes["output_layer.weight"] = (V, H)
    return shapes


def init_params(cfg: GPTConfig, generator: torch.Generator) -> dict:
    """Megatron's init: norms = 1; linear and embedding weights N(0, 0.02), except the output
    projections of each residual branch (linear_proj, linear_fc2), which use
    N(0, 0.02 / sqrt(2 L)) (megatron/core/utils.py: scaled_init_method_normal).
    Parameters are drawn in param_shapes order from one generator."""
    params = {}
    scaled_std = cfg.init_std / math.sqrt(2.0 * cfg.layers)
    for name, shape in param_shapes(cfg).items():
        if name.endswith("layernorm.weight"):
            t = torch.ones(shape, dtype=torch.float32)
        else:
            std = scaled_std if ("linear_proj" in name or "linear_fc2" in name) else cfg.init_std
            t = torch.empty(shape, dtype=torch.float32).normal_(0.0, std, generator=generator)
        params[name] = t
    return params


def rmsnorm(x, w, eps):
    # x (..., H), w (H): x / sqrt(mean(x^2) + eps) * w
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * w


def rope_cos_sin(S, HD, theta):
    # -> cos, sin (S, HD), rotate-half layout: both halves use the same frequencies.
    inv_freq = 1.0 / (theta ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))  # (HD/2)
    pos = torch.arange(S, dtype=torch.float32)                                        # (S)
    angle = torch.outer(pos, inv_freq)                                                # (S, HD/2)
    angle = torch.cat([angle, angle], dim=-1)                                         # (S, HD)
    return angle.cos(), angle.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    # x (B, S, heads, HD); cos, sin (S, HD)
    return x * cos[None, :, None, :] + rotate_half(x) * sin[None, :, None, :]


def attention(x, w_qkv, w_proj, cfg: GPTConfig, cos, sin, w_qnorm=None, w_knorm=None):
    # x (B, S, H) -> (B, S, H); w_qnorm, w_knorm (HD) with cfg.qk_norm
    B, S, _ = x.shape
    NH, NKV, G, HD = cfg.heads, cfg.kv_heads, cfg.group, cfg.head_dim
    qkv = x @ w_qkv.t()                                    # (B, S, (NH + 2 NKV) HD)
    qkv = qkv.view(B, S, NKV, (G + 2) * HD)                # Megatron's grouped layout
    q, k, v = torch.split(qkv, [G * HD, HD, HD], dim=-1)   # (B,S,NKV,G HD), (B,S,NKV,HD) x2
    q = q.reshape(B, S, NH, HD)                            # head h = group * G + g
    if cfg.qk_norm:                                        # HF Qwen3: q_norm / k_norm before RoPE
        q = rmsnorm(q, w_qnorm, cfg.norm_eps)
        k = rmsnorm(k, w_knorm, cfg.norm_eps)
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    # GQA: query head h attends with kv head h // G.
    k = k.repeat_interleave(G, dim=2)                      # (B, S, NH, HD)
    v = v.repeat_interleave(G, dim=2)                      # (B, S, NH, HD)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(HD)  # (B, NH, S, S)
    causal = torch.ones(S, S, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = torch.einsum("bhqk,bkhd->bqhd", probs, v)        # (B, S, NH, HD)
    return out.reshape(B, S, NH * HD) @ w_proj.t()         # (B, S, H)


def qk_norm_weights(params: dict, prefix: str, cfg: GPTConfig):
    # -> (w_qnorm, w_knorm) of layer prefix "decoder.layers.i.", or (None, None) without qk_norm
    if not cfg.qk_norm:
        return None, None
    return (params[prefix + "self_attention.q_layernorm.weight"],
            params[prefix + "self_attention.k_layernorm.weight"])


def mlp(x, w_fc1, w_fc2, cfg: GPTConfig):
    # x (B, S, H) -> (B, S, H)
    h = x @ w_fc1.t()                                      # (B, S, 2F)
    gate, up = h[..., : cfg.ffn], h[..., cfg.ffn :]
    return (F.silu(gate) * up) @ w_fc2.t()


def forward(params: dict, tokens: torch.Tensor, cfg: GPTConfig) -> torch.Tensor:
    """tokens (B, S) int -> logits (B*S, V). Positions are 0..S-1 in every sequence."""
    B, S = tokens.shape
    emb = params["embedding.word_embeddings.weight"]
    x = emb[tokens.long()]                                 # (B, S, H)
    cos, sin = rope_cos_sin(S, cfg.head_dim, cfg.rope_theta)
    for i in range(cfg.layers):
        p = f"decoder.layers.{i}."
        h = rmsnorm(x, params[p + "input_layernorm.weight"], cfg.norm_eps)
        x = x + attention(h, params[p + "self_attention.linear_qkv.weight"],
                          params[p + "self_attention.linear_proj.weight"], cfg, cos, sin,
                          *qk_norm_weights(params, p, cfg))
        h = rmsnorm(x, params[p + "pre_mlp_layernorm.weight"], cfg.norm_eps)
        x = x + mlp(h, params[p + "mlp.linear_fc1.weight"], params[p + "mlp.linear_fc2.weight"], cfg)
    x = rmsnorm(x, params["decoder.final_layernorm.weight"], cfg.norm_eps)
    w_out = emb if cfg.tied else params["output_layer.weight"]
    return (x @ w_out.t()).reshape(B * S, cfg.vocab)       # (B*S, V)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over all B*S tokens. logits (B*S, V), targets (B, S)."""
    return F.cross_entropy(logits, targets.reshape(-1).long(), reduction="mean")


def make_adamw(params: dict, lr, betas, eps, weight_decay) -> torch.optim.AdamW:
    """torch's AdamW (decoupled decay, Loshchilov & Hutter 2019) with two param groups:
    weight decay on the 2-D weights (linear, embedding), none on the norm weights (1-D).
    Per step t (1-based), for each parameter p with gradient g:
        p   *= 1 - lr * wd
        m    = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        p   -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)"""
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, foreach=False)
