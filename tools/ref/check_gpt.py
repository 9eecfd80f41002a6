"""Self-check of tools/ref/gpt.py against a second, loop-based formulation that indexes the
Megatron weight rows directly (one token, one head at a time, float64). Catches layout slips
(grouped QKV rows, gate/up order, rotate-half pairing, GQA head mapping) that a vectorised
rewrite of the same idea could repeat.

    /usr/bin/python3 tools/ref/check_gpt.py
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt  # noqa: E402


def loop_forward(params, tokens, cfg):
    """tokens (B, S) -> logits (B*S, V), float64, explicit loops."""
    P = {k: v.double() for k, v in params.items()}
    NH, NKV, G, HD, H = cfg.heads, cfg.kv_heads, cfg.group, cfg.head_dim, cfg.hidden
    B, S = tokens.shape

    def norm(x, w):
        return x / math.sqrt(float((x * x).mean()) + cfg.norm_eps) * w

    def rope(vec, pos):  # vec (HD): pairs (i, i + HD/2) rotate by pos * theta^(-2i/HD)
        out = vec.clone()
        half = HD // 2
        for i in range(half):
            a = pos * cfg.rope_theta ** (-2.0 * i / HD)
            c, s = math.cos(a), math.sin(a)
            out[i] = vec[i] * c - vec[i + half] * s
            out[i + half] = vec[i + half] * c + vec[i] * s
        return out

    logits = []
    for b in range(B):
        xs = [P["embedding.word_embeddings.weight"][int(tokens[b, t])].clone() for t in range(S)]
        for layer in range(cfg.layers):
            p = f"decoder.layers.{layer}."
            w_qkv = P[p + "self_attention.linear_qkv.weight"]
            hs = [norm(x, P[p + "input_layernorm.weight"]) for x in xs]
            heads_out = [torch.zeros(NH * HD, dtype=torch.float64) for _ in range(S)]
            for h in range(NH):
                j, g = h // G, h % G                       # kv group, position in group
                base = j * (G + 2) * HD
                wq = w_qkv[base + g * HD: base + (g + 1) * HD]
                wk = w_qkv[base + G * HD: base + (G + 1) * HD]
                wv = w_qkv[base + (G + 1) * HD: base + (G + 2) * HD]
                if cfg.qk_norm:  # per head over HD, before RoPE
                    wqn = P[p + "self_attention.q_layernorm.weight"]
                    wkn = P[p + "self_attention.k_layernorm.weight"]
                    q = [rope(norm(wq @ hs[t], wqn), t) for t in range(S)]
                    k = [rope(norm(wk @ hs[t], wkn), t) for t in range(S)]
                else:
                    q = [rope(wq @ hs[t], t) for t in range(S)]
                    k = [rope(wk @ hs[t], t) for t in range(S)]
                v = [wv @ hs[t] for t in range(S)]
                for t in range(S):
                    scores = torch.tensor([float(q[t] @ k[u]) / math.sqrt(HD) for u in range(t + 1)],
                                          dtype=torch.float64)
                    probs = torch.softmax(scores, dim=0)
                    heads_out[t][h * HD:(h + 1) * HD] = sum(probs[u] * v[u] for u in range(t + 1))
            w_proj = P[p + "self_attention.linear_proj.weight"]
            xs = [xs[t] + w_proj @ heads_out[t] for t in range(S)]
            w1, w2 = P[p + "mlp.linear_fc1.weight"], P[p + "mlp.linear_fc2.weight"]
            for t in range(S):
                hn = norm(xs[t], P[p + "pre_mlp_layernorm.weight"])
                gate, up = w1[:cfg.ffn] @ hn, w1[cfg.ffn:] @ hn
                act = gate / (1 + torch.exp(-gate)) * up
                xs[t] = xs[t] + w2 @ act
        w_out = P["embedding.word_embeddings.weight"] if cfg.tied else P["output_layer.weight"]
        for t in range(S):
            logits.append(w_out @ norm(xs[t], P["decoder.final_layernorm.weight"]))
    return torch.stack(logits)


def main():
    torch.set_num_threads(1)
    for tied, qk_norm in ((False, False), (True, False), (False, True)):
        cfg = gpt.GPTConfig(vocab=37, hidden=24, layers=2, heads=6, kv_heads=2, ffn=20, tied=tied,
                            qk_norm=qk_norm)
        gen = torch.Generator().manual_seed(7)
        params = gpt.init_params(cfg, gen)
        # Larger weights than the 0.02 init, so attention is far from uniform.
        params = {k: (v * 10 if v.dim() == 2 else v + 0.3 * torch.randn(v.shape, generator=gen))
                  for k, v in params.items()}
        tokens = torch.randint(0, cfg.vocab, (2, 7), generator=gen)
        ref = loop_forward(params, tokens, cfg)
        got = gpt.forward(params, tokens, cfg).double()
        err = float((ref - got).abs().max() / ref.abs().max())
        print(f"tied={tied} qk_norm={qk_norm}: max |gpt.forward - loop| / max |loop| = {err:.2e}")
        assert err < 1e-5, "gpt.forward disagrees with the loop formulation"
    # Scaled init: linear_proj / linear_fc2 std = 0.02 / sqrt(2 L).
    cfg = gpt.GPTConfig(layers=8, hidden=256, heads=4, kv_heads=4, ffn=512)
    p = gpt.init_params(cfg, torch.Generator().manual_seed(0))
    std_proj = float(p["decoder.layers.0.self_attention.linear_proj.weight"].std())
    std_qkv = float(p["decoder.layers.0.self_attention.linear_qkv.weight"].std())
    print(f"init std: linear_proj {std_proj:.5f} (want {0.02 / 4:.5f}), linear_qkv {std_qkv:.5f}")
    assert abs(std_proj - 0.005) < 2e-4 and abs(std_qkv - 0.02) < 5e-4
    print("ok")


if __name__ == "__main__":
    main()
