"""Reference Mixture-of-Experts GPT in plain PyTorch, float32 (or float64), with Megatron-Core
parameter names and layouts. foundry's models/gpt with MoE layers is checked against it
(tests/parity/moe_parity_test.cpp) through the fixtures written by write_moe_fixtures.py.

Everything but the MLP of the MoE layers is tools/ref/gpt.py (embedding, GQA attention with RoPE,
RMSNorm, SwiGLU dense MLP, output layer, pre-norm residual layers). The MoE block is transcribed
from Hugging Face transformers' semantics (no HF package is used):

  MixtralSparseMoeBlock / Qwen3MoeSparseMoeBlock (norm_topk_prob=True), x (T, H) one row per token:
      logits  = x W_r^T                                  W_r (E, H)    router.weight
      scores  = softmax(logits) over all E experts       (T, E)
      w, idx  = topk(scores, k)                          ties: lower expert index (foundry's rule;
                                                         random weights make ties improbable)
      w       = w / sum_k w                              renormalised: = softmax of the k selected
                                                         logits = Megatron's default post-softmax
      y[t]    = sum_j w[t, j] * expert_{idx[t, j]}(x[t])
      expert_e(x) = w2_e (silu(w1_e x) * w3_e x)         SwiGLU (MixtralBlockSparseTop2MLP)
  Shared expert with sigmoid gate (Qwen2MoeSparseMoeBlock; Megatron SharedExpertMLP with
  moe_shared_expert_gate):
      y[t]   += sigmoid(g . x[t]) * SwiGLU_shared(x[t])  g (1, H)      shared_experts.gate_weight
  Qwen3-MoE's attention q/k RMSNorm (q_norm, k_norm over the head dim before RoPE) is gpt.py's
  qk_norm option (Megatron's qk_layernorm); the "qwen3" fixture uses it, with Qwen3-MoE's sparse
  block (many fine-grained experts, larger k, norm_topk_prob, no shared expert).

Auxiliary losses (Megatron-Core, not HF: HF Mixtral's router_aux_loss concatenates all layers'
router logits into one loss; we use Megatron's per-layer losses, shared/reference/megatron_moe.md):
  aux (switch, §2.4), per MoE layer, T = B*S tokens of the batch:
      aux = c_aux * E / (k * T^2) * sum_e ( sum_t scores[t, e] ) * n_e
      n_e = number of tokens whose top-k contains e (an integer count: no gradient)
  z (§2.5), per MoE layer:  z = c_z * mean_t ( logsumexp_e logits[t, e] )^2
  loss = mean cross-entropy over the B*S tokens + sum over MoE layers of (aux + z)
  (MoEAuxLossAutoScaler with scale 1: one micro-batch, single rank.)
The fixtures use c_aux = 1e-2, c_z = 1e-3.

Parameter layouts of MoE layer l (foundry = Megatron-Core TEGroupedMLP, stacked per expert):
  decoder.layers.l.mlp.router.weight                      (E, H)
  decoder.layers.l.mlp.experts.linear_fc1.weight          (E, 2 Fm, H)  rows [0, Fm) gate = HF w1,
                                                                        rows [Fm, 2 Fm) up = HF w3
  decoder.layers.l.mlp.experts.linear_fc2.weight          (E, H, Fm)    = HF w2
  decoder.layers.l.mlp.shared_experts.linear_fc1.weight   (2 Fs, H)     [gate; up]
  decoder.layers.l.mlp.shared_experts.linear_fc2.weight   (H, Fs)
  decoder.layers.l.mlp.shared_experts.gate_weight         (1, H)        only with the sigmoid gate
Dense layers (layer_pattern 0) keep gpt.py's decoder.layers.l.mlp.linear_fc{1,2}.weight.

Letters: T tokens, E experts, k top-k, Fm moe ffn, Fs shared-expert ffn.
"""

import math
import os
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt  # noqa: E402


@dataclass
class MoEConfig(gpt.GPTConfig):
    num_experts: int = 4          # E (num_moe_experts)
    topk: int = 2                 # k (moe_router_topk)
    moe_ffn: int = 32             # Fm (moe_ffn_hidden_size)
    shared_ffn: int = 0           # Fs (moe_shared_expert_intermediate_size); 0: no shared expert
    shared_gate: bool = False     # moe_shared_expert_gate
    layer_pattern: tuple = ()     # one 0 (dense) / 1 (MoE) per layer (moe_layer_freq list); (): all MoE
    aux_coeff: float = 1e-2       # moe_aux_loss_coeff (load balancing type aux_loss)
    z_coeff: float = 1e-3         # moe_z_loss_coeff
    router_init_std: float = 0.02

    def is_moe(self, layer: int) -> bool:
        if not self.layer_pattern:
            return True
        assert len(self.layer_pattern) == self.layers, "layer_pattern needs one entry per layer"
        return self.layer_pattern[layer] == 1


def param_shapes(cfg: MoEConfig) -> dict:
    """Every parameter name -> shape, in the canonical (fixture) order: gpt.py's order with the
    dense MLP of each MoE layer replaced by router, experts, shared experts."""
    H, E, Fm, Fs = cfg.hidden, cfg.num_experts, cfg.moe_ffn, cfg.shared_ffn
    shapes = {}
    for name, shape in gpt.param_shapes(cfg).items():
        parts = name.split(".")
        if parts[0] == "decoder" and parts[1] == "layers" and parts[3] == "mlp" and cfg.is_moe(int(parts[2])):
            if parts[4] == "linear_fc2":
                continue
            p = f"decoder.layers.{parts[2]}.mlp."
            shapes[p + "router.weight"] = (E, H)
            shapes[p + "experts.linear_fc1.weight"] = (E, 2 * Fm, H)
            shapes[p + "experts.linear_fc2.weight"] = (E, H, Fm)
            if Fs:
                shapes[p + "shared_experts.linear_fc1.weight"] = (2 * Fs, H)
                shapes[p + "shared_experts.linear_fc2.weight"] = (H, Fs)
                if cfg.shared_gate:
                    shapes[p + "shared_experts.gate_weight"] = (1, H)
        else:
            shapes[name] = shape
    return shapes


def init_params(cfg: MoEConfig, generator: torch.Generator) -> dict:
    """As gpt.init_params: norms = 1; N(0, init_std) for linear / embedding weights, the gate_weight
    included; N(0, init_std / sqrt(2 L)) for every linear_proj and linear_fc2 (experts' too);
    router N(0, router_init_std). Drawn in param_shapes order from one generator."""
    params = {}
    scaled_std = cfg.init_std / math.sqrt(2.0 * cfg.layers)
    for name, shape in param_shapes(cfg).items():
        if name.endswith("layernorm.weight"):
            t = torch.ones(shape, dtype=torch.float32)
        else:
            if name.endswith("router.weight"):
                std = cfg.router_init_std
            elif "linear_proj" in name or "linear_fc2" in name:
                std = scaled_std
            else:
                std = cfg.init_std
            t = torch.empty(shape, dtype=torch.float32).normal_(0.0, std, generator=generator)
        params[name] = t
    return params


def topk_lower_index(scores, k):
    """torch.topk over the last dim with ties broken toward the lower index (foundry's rule):
    a stable descending sort keeps equal scores in index order."""
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.gather(scores, -1, order), order


def swiglu(x, w_fc1, w_fc2, ffn):
    # x (..., H), w_fc1 (2 ffn, H) [gate; up], w_fc2 (H, ffn) -> (..., H)
    h = x @ w_fc1.t()
    return (F.silu(h[..., :ffn]) * h[..., ffn:]) @ w_fc2.t()


def moe_block(x, params: dict, prefix: str, cfg: MoEConfig):
    """Sparse MoE block, vectorised. x (T, H), prefix "decoder.layers.l.mlp.".
    Returns y (T, H), aux_loss, z_loss (0-d tensors) and the routing (idx (T, k)) for diagnostics."""
    T = x.shape[0]
    E, k, Fm = cfg.num_experts, cfg.topk, cfg.moe_ffn
    logits = x @ params[prefix + "router.weight"].t()                  # (T, E)
    scores = torch.softmax(logits, dim=-1)                             # (T, E) over all experts
    w, idx = topk_lower_index(scores, k)                               # (T, k)
    w = w / w.sum(dim=-1, keepdim=True)                                # norm_topk_prob
    probs = torch.zeros_like(scores).scatter(1, idx, w)                # (T, E), 0 off the top-k

    fc1 = params[prefix + "experts.linear_fc1.weight"]                 # (E, 2Fm, H)
    fc2 = params[prefix + "experts.linear_fc2.weight"]                 # (E, H, Fm)
    h = torch.einsum("th,efh->tef", x, fc1)                            # (T, E, 2Fm), every expert
    act = F.silu(h[..., :Fm]) * h[..., Fm:]                            # (T, E, Fm)
    out = torch.einsum("tef,ehf->teh", act, fc2)                       # (T, E, H)
    y = torch.einsum("te,teh->th", probs, out)                         # (T, H)

    if cfg.shared_ffn:
        ys = swiglu(x, params[prefix + "shared_experts.linear_fc1.weight"],
                    params[prefix + "shared_experts.linear_fc2.weight"], cfg.shared_ffn)
        if cfg.shared_gate:
            ys = torch.sigmoid(x @ params[prefix + "shared_experts.gate_weight"].t()) * ys  # (T,1)*(T,H)
        y = y + ys

    counts = torch.zeros(T, E, dtype=x.dtype).scatter(1, idx, 1.0).sum(dim=0)  # n_e, no gradient
    aux = cfg.aux_coeff * E / (k * T * T) * (scores.sum(dim=0) * counts).sum()
    z = cfg.z_coeff * torch.logsumexp(logits, dim=-1).pow(2).mean()
    return y, aux, z, idx


def forward(params: dict, tokens: torch.Tensor, cfg: MoEConfig, block=moe_block):
    """tokens (B, S) -> logits (B*S, V), [(aux, z) per layer: zeros for dense layers], [routing idx
    (T, k) per MoE layer]. Tokens are flattened batch-major (t = b*S + s), as foundry does; the
    block sees all B*S tokens at once (the aux loss's T). `block` lets the self-check substitute
    its loop formulation."""
    B, S = tokens.shape
    emb = params["embedding.word_embeddings.weight"]
    dtype = emb.dtype
    x = emb[tokens.long()]                                             # (B, S, H)
    cos, sin = gpt.rope_cos_sin(S, cfg.head_dim, cfg.rope_theta)
    cos, sin = cos.to(dtype), sin.to(dtype)
    moe_losses, routing = [], []
    zero = torch.zeros((), dtype=dtype)
    for i in range(cfg.layers):
        p = f"decoder.layers.{i}."
        h = gpt.rmsnorm(x, params[p + "input_layernorm.weight"], cfg.norm_eps)
        x = x + gpt.attention(h, params[p + "self_attention.linear_qkv.weight"],
                              params[p + "self_attention.linear_proj.weight"], cfg, cos, sin,
                              *gpt.qk_norm_weights(params, p, cfg))
        h = gpt.rmsnorm(x, params[p + "pre_mlp_layernorm.weight"], cfg.norm_eps)
        if cfg.is_moe(i):
            y, aux, z, idx = block(h.reshape(B * S, cfg.hidden), params, p + "mlp.", cfg)
            x = x + y.reshape(B, S, cfg.hidden)
            moe_losses.append((aux, z))
            routing.append(idx)
        else:
            x = x + gpt.mlp(h, params[p + "mlp.linear_fc1.weight"], params[p + "mlp.linear_fc2.weight"], cfg)
            moe_losses.append((zero, zero))
    x = gpt.rmsnorm(x, params["decoder.final_layernorm.weight"], cfg.norm_eps)
    w_out = emb if cfg.tied else params["output_layer.weight"]
    return (x @ w_out.t()).reshape(B * S, cfg.vocab), moe_losses, routing


def loss_fn(logits, targets, moe_losses):
    """-> (total, ce): ce = mean cross-entropy over the B*S tokens; total = ce + sum (aux + z)."""
    ce = gpt.loss_fn(logits, targets)
    total = ce
    for aux, z in moe_losses:
        total = total + aux + z
    return total, ce


# ----------------------------------------------------------------------------------------------
# Self-check: the vectorised block against a token-by-token float64 loop over the HF formula.


def loop_moe_block(x, params: dict, prefix: str, cfg: MoEConfig):
    """MixtralSparseMoeBlock / Qwen3MoeSparseMoeBlock / Qwen2Moe shared expert, one token at a
    time, float64, indexing the Megatron rows directly: w1_e = fc1[e, :Fm], w3_e = fc1[e, Fm:],
    w2_e = fc2[e]. Plus the aux and z losses from explicit sums."""
    P = {k: v.double() for k, v in params.items() if k.startswith(prefix)}
    x = x.double()
    T, H = x.shape
    E, k, Fm, Fs = cfg.num_experts, cfg.topk, cfg.moe_ffn, cfg.shared_ffn
    W_r = P[prefix + "router.weight"]
    fc1, fc2 = P[prefix + "experts.linear_fc1.weight"], P[prefix + "experts.linear_fc2.weight"]

    def silu(v):
        return v / (1.0 + torch.exp(-v))

    ys, all_scores, counts, lse2 = [], [], [0] * E, 0.0
    for t in range(T):
        xt = x[t]
        logits = [float(W_r[e] @ xt) for e in range(E)]
        mx = max(logits)
        denom = sum(math.exp(v - mx) for v in logits)
        scores = [math.exp(v - mx) / denom for v in logits]          # routing_weights = softmax
        all_scores.append(scores)
        lse2 += (mx + math.log(denom)) ** 2
        chosen = sorted(range(E), key=lambda e: (-scores[e], e))[:k]  # top-k, lower index on ties
        total = sum(scores[e] for e in chosen)                       # routing_weights /= sum
        y = torch.zeros(H, dtype=torch.float64)
        for e in chosen:
            counts[e] += 1
            expert = fc2[e] @ (silu(fc1[e, :Fm] @ xt) * (fc1[e, Fm:] @ xt))
            y = y + (scores[e] / total) * expert
        if Fs:
            s1, s2 = P[prefix + "shared_experts.linear_fc1.weight"], P[prefix + "shared_experts.linear_fc2.weight"]
            shared = s2 @ (silu(s1[:Fs] @ xt) * (s1[Fs:] @ xt))
            if cfg.shared_gate:
                g = float(P[prefix + "shared_experts.gate_weight"][0] @ xt)
                shared = shared / (1.0 + math.exp(-g))
            y = y + shared
        ys.append(y)
    aux = cfg.aux_coeff * E / (k * T * T) * sum(sum(all_scores[t][e] for t in range(T)) * counts[e]
                                                 for e in range(E))
    z = cfg.z_coeff * lse2 / T
    idx = torch.tensor([sorted(range(E), key=lambda e: (-all_scores[t][e], e))[:k] for t in range(T)])
    return torch.stack(ys), torch.tensor(aux, dtype=torch.float64), torch.tensor(z, dtype=torch.float64), idx


def self_check():
    torch.set_num_threads(1)
    cases = {
        "mixtral": MoEConfig(vocab=29, hidden=16, layers=2, heads=4, kv_heads=2, ffn=24,
                             num_experts=4, topk=2, moe_ffn=12),
        "qwen3": MoEConfig(vocab=29, hidden=16, layers=2, heads=4, kv_heads=2, ffn=24,
                           num_experts=16, topk=4, moe_ffn=6, qk_norm=True),
        "shared": MoEConfig(vocab=29, hidden=16, layers=3, heads=4, kv_heads=4, ffn=24, num_experts=8,
                            topk=2, moe_ffn=8, shared_ffn=10, shared_gate=True, layer_pattern=(0, 1, 1)),
        "shared_nogate": MoEConfig(vocab=29, hidden=16, layers=2, heads=4, kv_heads=1, ffn=24, num_experts=6,
                                   topk=3, moe_ffn=8, shared_ffn=10, shared_gate=False, tied=True),
    }
    for name, cfg in cases.items():
        cfg.init_std, cfg.router_init_std = 0.3, 0.5
        gen = torch.Generator().manual_seed(11)
        params = init_params(cfg, gen)
        # 1. The block alone on random tokens.
        for i in range(cfg.layers):
            if not cfg.is_moe(i):
                continue
            p = f"decoder.layers.{i}.mlp."
            x = torch.randn(13, cfg.hidden, generator=gen)
            y, aux, z, idx = moe_block(x, params, p, cfg)
            y_ref, aux_ref, z_ref, idx_ref = loop_moe_block(x, params, p, cfg)
            err = float((y.double() - y_ref).abs().max() / y_ref.abs().max())
            assert torch.equal(idx, idx_ref), f"{name}: routing differs"
            assert err < 1e-5, f"{name} layer {i}: block differs by {err:.2e}"
            assert abs(float(aux) - float(aux_ref)) <= 1e-6 * abs(float(aux_ref)), f"{name}: aux"
            assert abs(float(z) - float(z_ref)) <= 1e-6 * abs(float(z_ref)), f"{name}: z"
            print(f"{name} layer {i}: block vs loop {err:.2e}, aux {float(aux):.6f} = {float(aux_ref):.6f}, "
                  f"z {float(z):.6f} = {float(z_ref):.6f}")
        # 2. The whole model with the loop block substituted (float64 both ways).
        P64 = {k: v.double() for k, v in params.items()}
        tokens = torch.randint(0, cfg.vocab, (2, 5), generator=gen)
        logits, losses, _ = forward(P64, tokens, cfg)
        logits_ref, losses_ref, _ = forward(P64, tokens, cfg, block=loop_moe_block)
        err = float((logits - logits_ref).abs().max() / logits_ref.abs().max())
        lerr = max(abs(float(a) - float(b)) for pa, pb in zip(losses, losses_ref) for a, b in zip(pa, pb))
        print(f"{name}: model logits vs loop-block model {err:.2e}, losses {lerr:.2e}")
        assert err < 1e-10 and lerr < 1e-12
        # 3. Parameter names: every MoE layer has the foundry names, dense layers gpt.py's.
        for i in range(cfg.layers):
            p = f"decoder.layers.{i}.mlp."
            assert (p + "router.weight" in params) == cfg.is_moe(i)
            assert (p + "linear_fc1.weight" in params) != cfg.is_moe(i)
    # 4. Ties go to the lower expert index.
    w, idx = topk_lower_index(torch.tensor([[0.1, 0.3, 0.3, 0.2, 0.3]]), 2)
    assert idx.tolist() == [[1, 2]], idx
    print("ok")


if __name__ == "__main__":
    self_check()
