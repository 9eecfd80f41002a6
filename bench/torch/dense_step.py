"""PyTorch side of the dense GPT training-step benchmark: the model of tools/ref/gpt.py (Llama-style
decoder, Megatron-Core names and layouts: grouped QKV rows, [gate; up] fc1, RMSNorm, rotate-half
RoPE, GQA, untied head) written for speed on CPU with Debian's python3-torch 1.13. One step =
zero grads, forward, mean cross-entropy, backward, clip_grad_norm_(1.0), AdamW step.

    /usr/bin/python3 bench/torch/dense_step.py --steps 3 --warmup 1 --threads 2

Prints ONE JSON line: {"impl": "torch", "tokens_per_s", "step_ms", "threads", "torch", ...}.

GEMM path (--gemm). Debian's torch is built with BLAS_INFO=generic, i.e. against whatever
libblas.so.3 is installed; here that is netlib's reference BLAS (about 5 GFLOP/s on 2 cores), so
the stock F.linear / torch.matmul formulation measures the reference BLAS, not PyTorch.
  onednn (default): every GEMM is a 1x1 convolution, which torch 1.13 runs (forward and both
      backward passes) through oneDNN, the library foundry's CPU backend also uses; attention
      products are grouped 1x1 convolutions, one group per (batch, kv head). Activations are kept
      in Megatron's [s, b, h] layout so every reshape around the convolutions is a view.
      Same float32 math, 10-20x faster here than the BLAS path.
  blas: the textbook formulation, F.linear and torch.matmul attention with a causal mask.
Both are checked against tools/ref/gpt.py with --check (loss and every gradient).
"""

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


# ---------------------------------------------------------------------------------------------
# GEMM primitives. x2d (N, in), w (out, in) -> (N, out).

def linear_blas(x2d, w):
    return F.linear(x2d, w)


def linear_onednn(x2d, w):
    # 1x1 convolution with N as the batch and `in` as channels: y[n, o] = sum_i x[n, i] w[o, i].
    n, k = x2d.shape
    return F.conv2d(x2d.view(n, k, 1, 1), w.view(w.shape[0], k, 1, 1)).view(n, w.shape[0])


def attention_core_blas(q, k, v, mask):
    # q (S, B, NKV, G, HD) pre-scaled, k/v (S, B, NKV, HD), mask (S, S) additive -> (S, B, NKV, G, HD)
    qb = q.permute(1, 2, 3, 0, 4)                          # (B, NKV, G, S, HD)
    kb = k.permute(1, 2, 3, 0).unsqueeze(2)                # (B, NKV, 1, HD, S)
    vb = v.permute(1, 2, 0, 3).unsqueeze(2)                # (B, NKV, 1, S, HD)
    probs = torch.softmax(torch.matmul(qb, kb) + mask, dim=-1)  # (B, NKV, G, S, S)
    return torch.matmul(probs, vb).permute(3, 0, 1, 2, 4)  # (S, B, NKV, G, HD)


def attention_core_onednn(q, k, v, mask):
    # Grouped 1x1 convolutions, one group per (b, kv head j) = GB groups; the batch of the
    # convolution is the (query position, g) pairs, so the G query heads sharing kv head j
    # need no copy of k or v.
    S, B, NKV, G, HD = q.shape
    GB = B * NKV
    qc = q.permute(0, 3, 1, 2, 4).reshape(S * G, GB * HD, 1, 1)   # [(s, g), (b, j, d)]
    kw = k.reshape(S, GB, HD).transpose(0, 1).reshape(GB * S, HD, 1, 1)     # [(b, j, t), d]
    vw = v.reshape(S, GB, HD).permute(1, 2, 0).reshape(GB * HD, S, 1, 1)    # [(b, j, d), t]
    scores = F.conv2d(qc, kw, groups=GB).view(S, G, GB, S)        # [s, g, (b, j), t]
    probs = torch.softmax(scores + mask.view(S, 1, 1, S), dim=-1)
    out = F.conv2d(probs.view(S * G, GB * S, 1, 1), vw, groups=GB)  # [(s, g), (b, j, d)]
    return out.view(S, G, B, NKV, HD).permute(0, 2, 3, 1, 4)       # (S, B, NKV, G, HD)


PATHS = {"onednn": (linear_onednn, attention_core_onednn),
         "blas": (linear_blas, attention_core_blas)}


# ---------------------------------------------------------------------------------------------
# Model.

class DenseGPT(torch.nn.Module):
    """Parameters under Megatron-Core names (flattened: '.' -> '/' for nn.ParameterDict)."""

    def __init__(self, vocab, hidden, layers, heads, kv_heads, ffn, seq, gemm, seed=1234):
        super().__init__()
        self.V, self.H, self.L, self.NH, self.NKV, self.F = vocab, hidden, layers, heads, kv_heads, ffn
        self.HD, self.G = hidden // heads, heads // kv_heads
        self.linear, self.attention_core = PATHS[gemm]
        gen = torch.Generator().manual_seed(seed)
        self.names = []
        self.p = torch.nn.ParameterDict()
        scaled = 0.02 / math.sqrt(2 * layers)   # Megatron's scaled init for output projections

        def add(name, shape, std):
            t = torch.ones(shape) if std is None else torch.empty(shape).normal_(0, std, generator=gen)
            self.p[name.replace(".", "/")] = torch.nn.Parameter(t)
            self.names.append(name)

        add("embedding.word_embeddings.weight", (vocab, hidden), 0.02)
        for i in range(layers):
            pre = f"decoder.layers.{i}."
            add(pre + "input_layernorm.weight", (hidden,), None)
            add(pre + "self_attention.linear_qkv.weight", ((heads + 2 * kv_heads) * self.HD, hidden), 0.02)
            add(pre + "self_attention.linear_proj.weight", (hidden, heads * self.HD), scaled)
            add(pre + "pre_mlp_layernorm.weight", (hidden,), None)
            add(pre + "mlp.linear_fc1.weight", (2 * ffn, hidden), 0.02)
            add(pre + "mlp.linear_fc2.weight", (hidden, ffn), scaled)
        add("decoder.final_layernorm.weight", (hidden,), None)
        add("output_layer.weight", (vocab, hidden), 0.02)

        # RoPE tables (S, HD), rotate-half layout; additive causal mask (S, S).
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, self.HD, 2, dtype=torch.float32) / self.HD))
        angle = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
        angle = torch.cat([angle, angle], dim=-1)
        self.cos, self.sin = angle.cos(), angle.sin()
        self.mask = torch.full((seq, seq), float("-inf")).triu(1)

    def w(self, name):
        return self.p[name.replace(".", "/")]

    @staticmethod
    def rmsnorm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def rope(self, x, cos, sin):
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    def forward(self, tokens, targets):
        # tokens, targets (B, S) -> scalar mean cross-entropy. Activations in [s, b, h] layout.
        B, S = tokens.shape
        NKV, G, HD = self.NKV, self.G, self.HD
        cos = self.cos[:S].view(S, 1, 1, HD)
        sin = self.sin[:S].view(S, 1, 1, HD)
        x = F.embedding(tokens.t(), self.w("embedding.word_embeddings.weight")).reshape(S * B, self.H)
        for i in range(self.L):
            pre = f"decoder.layers.{i}."
            h = self.rmsnorm(x, self.w(pre + "input_layernorm.weight"))
            qkv = self.linear(h, self.w(pre + "self_attention.linear_qkv.weight"))
            qkv = qkv.view(S, B, NKV, G + 2, HD)              # Megatron's grouped rows
            q = qkv[:, :, :, :G].reshape(S, B, NKV * G, HD)
            q = self.rope(q, cos, sin).view(S, B, NKV, G, HD) * (1.0 / math.sqrt(HD))
            k = self.rope(qkv[:, :, :, G], cos, sin)          # (S, B, NKV, HD)
            v = qkv[:, :, :, G + 1]
            a = self.attention_core(q, k, v, self.mask[:S, :S]).reshape(S * B, self.NH * HD)
            x = x + self.linear(a, self.w(pre + "self_attention.linear_proj.weight"))
            h = self.rmsnorm(x, self.w(pre + "pre_mlp_layernorm.weight"))
            gate, up = self.linear(h, self.w(pre + "mlp.linear_fc1.weight")).split(self.F, dim=-1)
            x = x + self.linear(F.silu(gate) * up, self.w(pre + "mlp.linear_fc2.weight"))
        x = self.rmsnorm(x, self.w("decoder.final_layernorm.weight"))
        logits = self.linear(x, self.w("output_layer.weight"))   # (S*B, V)
        return F.cross_entropy(logits, targets.t().reshape(-1))


def make_optimizer(model):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=1e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True)


def train_step(model, opt, tokens, targets):
    opt.zero_grad(set_to_none=True)
    loss = model(tokens, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


# ---------------------------------------------------------------------------------------------

def check_against_reference():
    """Loss and every gradient of both GEMM paths vs tools/ref/gpt.py on a small GQA config."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "ref"))
    import gpt
    cfg = gpt.GPTConfig(vocab=97, hidden=48, layers=2, heads=6, kv_heads=2, ffn=40)
    B, S = 3, 11
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, cfg.vocab, (B, S), generator=gen)
    targets = torch.randint(0, cfg.vocab, (B, S), generator=gen)
    for gemm in PATHS:
        model = DenseGPT(cfg.vocab, cfg.hidden, cfg.layers, cfg.heads, cfg.kv_heads, cfg.ffn, S, gemm)
        with torch.no_grad():  # O(1) perturbation of the norms so their gradients are exercised
            for n in model.names:
                if n.endswith("layernorm.weight"):
                    model.w(n).add_(0.1 * torch.randn(model.w(n).shape, generator=gen))
        ref = {n: model.w(n).detach().clone().requires_grad_(True) for n in model.names}
        ref_loss = gpt.loss_fn(gpt.forward(ref, tokens, cfg), targets)
        ref_loss.backward()
        loss = model(tokens, targets)
        loss.backward()
        worst = max(float((model.w(n).grad - ref[n].grad).norm() / ref[n].grad.norm()) for n in model.names)
        print(f"--check {gemm}: loss {loss.item():.6f} vs ref {ref_loss.item():.6f}, "
              f"worst grad rel err {worst:.2e}")
        assert abs(loss.item() - ref_loss.item()) < 1e-5 and worst < 1e-4, gemm


def run_and_report(model, args):
    """Warm-up plus timed AdamW steps of `model` on one random batch; prints the JSON line."""
    opt = make_optimizer(model)
    gen = torch.Generator().manual_seed(0)
    seq = torch.randint(0, args.vocab, (args.batch, args.seq + 1), generator=gen)
    tokens, targets = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
    for _ in range(args.warmup):
        train_step(model, opt, tokens, targets)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = train_step(model, opt, tokens, targets)
        loss.item()
        times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)
    print(json.dumps({
        "impl": "torch",
        "tokens_per_s": round(args.batch * args.seq / step_s, 1),
        "step_ms": round(step_s * 1e3, 2),
        "step_ms_each": [round(t * 1e3, 1) for t in times],
        "threads": args.threads,
        "torch": torch.__version__,
        "gemm": args.gemm,
        "steps": args.steps,
        "params": sum(p.numel() for p in model.parameters()),
        "loss": round(loss.item(), 4),
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=1408)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gemm", choices=list(PATHS), default="onednn")
    ap.add_argument("--check", action="store_true", help="compare with tools/ref/gpt.py and exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.check:
        check_against_reference()
        return

    model = DenseGPT(args.vocab, args.hidden, args.layers, args.heads, args.kv_heads, args.ffn,
                     args.seq, args.gemm)
    run_and_report(model, args)

if __name__ == "__main__":
    main()
