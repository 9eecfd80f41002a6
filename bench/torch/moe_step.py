"""PyTorch side of the MoE GPT training-step benchmark (configs/bench/moe-small.yaml): the decoder of
bench/torch/dense_step.py (same attention, norms, RoPE, GQA, untied head, same GEMM routing)
with every MLP replaced by a Hugging Face MixtralSparseMoeBlock transcribed to plain PyTorch:
    logits = x W_r^T (T, E); p = softmax(logits); w, idx = topk(p, k); w /= sum(w)
    for e in experts: rows of tokens routed to e (torch.where on the one-hot mask),
        y_e = SwiGLU_e(x.index_select(rows)) * w[rows]; out.index_add_(0, rows, y_e)
with SwiGLU experts (Megatron layout: fc1 (2F, H) = [gate; up], fc2 (H, F)), one nn.Parameter
per expert weight as in HF's ModuleList of experts, and Megatron's aux_loss (switch
load-balancing, moe_utils.switch_load_balancing_loss_func) per layer:
    aux = c * E / (k * T^2) * sum_e (sum_t p[t, e]) * n_e     (n_e = tokens routed to e)
added to the loss. One step = zero grads, forward, mean cross-entropy + aux losses, backward,
clip_grad_norm_(1.0), AdamW step.

    /usr/bin/python3 bench/torch/moe_step.py --steps 3 --warmup 1 --threads 2

Prints ONE JSON line: {"impl": "torch", "tokens_per_s", "step_ms", "threads", "torch", ...}.
--gemm onednn (default) runs every matrix product as a 1x1 convolution (oneDNN), --gemm blas
through F.linear (Debian's reference BLAS); see dense_step.py for why. --check compares the
looped block with a dense formulation (every expert on every token, weighted by the sparse
probabilities) in both GEMM modes: loss and every gradient.
"""

import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dense_step import PATHS, DenseGPT, run_and_report  # noqa: E402


class MoEGPT(torch.nn.Module):
    """Parameters under Megatron-Core names (SequentialMLP's local_experts for the experts)."""

    def __init__(self, vocab, hidden, layers, heads, kv_heads, experts, topk, moe_ffn, aux_coeff, seq, gemm,
                 seed=1234):
        super().__init__()
        self.V, self.H, self.L, self.NH, self.NKV = vocab, hidden, layers, heads, kv_heads
        self.E, self.K, self.F, self.aux_coeff = experts, topk, moe_ffn, aux_coeff
        self.HD, self.G = hidden // heads, heads // kv_heads
        self.linear, self.attention_core = PATHS[gemm]
        gen = torch.Generator().manual_seed(seed)
        self.names = []
        self.p = torch.nn.ParameterDict()
        scaled = 0.02 / math.sqrt(2 * layers)

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
            add(pre + "mlp.router.weight", (experts, hidden), 0.02)
            for e in range(experts):
                add(pre + f"mlp.experts.local_experts.{e}.linear_fc1.weight", (2 * moe_ffn, hidden), 0.02)
                add(pre + f"mlp.experts.local_experts.{e}.linear_fc2.weight", (hidden, moe_ffn), scaled)
        add("decoder.final_layernorm.weight", (hidden,), None)
        add("output_layer.weight", (vocab, hidden), 0.02)

        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, self.HD, 2, dtype=torch.float32) / self.HD))
        angle = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
        angle = torch.cat([angle, angle], dim=-1)
        self.cos, self.sin = angle.cos(), angle.sin()
        self.mask = torch.full((seq, seq), float("-inf")).triu(1)
        self.dense_experts = False  # --check: the dense formulation of the same block

    def w(self, name):
        return self.p[name.replace(".", "/")]

    rmsnorm = staticmethod(DenseGPT.rmsnorm)
    rope = DenseGPT.rope

    def expert(self, x, pre, e):
        # SwiGLU expert: x (n, H) -> (n, H).
        gate, up = self.linear(x, self.w(pre + f"mlp.experts.local_experts.{e}.linear_fc1.weight")).split(self.F, -1)
        return self.linear(F.silu(gate) * up, self.w(pre + f"mlp.experts.local_experts.{e}.linear_fc2.weight"))

    def moe(self, x, pre):
        # HF MixtralSparseMoeBlock on x (T, H) -> (T, H), plus the layer's aux loss.
        T = x.shape[0]
        logits = self.linear(x, self.w(pre + "mlp.router.weight"))        # (T, E)
        probs = torch.softmax(logits, dim=-1)
        weights, selected = torch.topk(probs, self.K, dim=-1)              # (T, k)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        one_hot = F.one_hot(selected, num_classes=self.E)                  # (T, k, E)
        counts = one_hot.sum(dim=(0, 1)).to(x.dtype)                       # (E)
        aux = self.aux_coeff * self.E / (self.K * T * T) * (probs.sum(0) * counts).sum()
        out = torch.zeros_like(x)
        if self.dense_experts:
            sparse = torch.zeros_like(probs).scatter(1, selected, weights)  # (T, E)
            for e in range(self.E):
                out = out + self.expert(x, pre, e) * sparse[:, e:e + 1]
            return out, aux
        expert_mask = one_hot.permute(2, 1, 0)                              # (E, k, T)
        for e in range(self.E):
            idx, top_x = torch.where(expert_mask[e])
            if top_x.numel() == 0:
                continue
            y = self.expert(x.index_select(0, top_x), pre, e) * weights[top_x, idx, None]
            out.index_add_(0, top_x, y)
        return out, aux

    def forward(self, tokens, targets):
        B, S = tokens.shape
        NKV, G, HD = self.NKV, self.G, self.HD
        cos = self.cos[:S].view(S, 1, 1, HD)
        sin = self.sin[:S].view(S, 1, 1, HD)
        x = F.embedding(tokens.t(), self.w("embedding.word_embeddings.weight")).reshape(S * B, self.H)
        aux_total = 0.0
        for i in range(self.L):
            pre = f"decoder.layers.{i}."
            h = self.rmsnorm(x, self.w(pre + "input_layernorm.weight"))
            qkv = self.linear(h, self.w(pre + "self_attention.linear_qkv.weight"))
            qkv = qkv.view(S, B, NKV, G + 2, HD)
            q = qkv[:, :, :, :G].reshape(S, B, NKV * G, HD)
            q = self.rope(q, cos, sin).view(S, B, NKV, G, HD) * (1.0 / math.sqrt(HD))
            k = self.rope(qkv[:, :, :, G], cos, sin)
            v = qkv[:, :, :, G + 1]
            a = self.attention_core(q, k, v, self.mask[:S, :S]).reshape(S * B, self.NH * HD)
            x = x + self.linear(a, self.w(pre + "self_attention.linear_proj.weight"))
            h = self.rmsnorm(x, self.w(pre + "pre_mlp_layernorm.weight"))
            y, aux = self.moe(h, pre)
            x = x + y
            aux_total = aux_total + aux
        x = self.rmsnorm(x, self.w("decoder.final_layernorm.weight"))
        logits = self.linear(x, self.w("output_layer.weight"))
        return F.cross_entropy(logits, targets.t().reshape(-1)) + aux_total


def check_dense_equivalence():
    B, S = 2, 9
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, 97, (B, S), generator=gen)
    targets = torch.randint(0, 97, (B, S), generator=gen)
    for gemm in PATHS:
        model = MoEGPT(97, 48, 2, 6, 2, 4, 2, 40, 1e-2, S, gemm)
        grads = []
        for dense in (False, True):
            model.dense_experts = dense
            model.zero_grad(set_to_none=True)
            loss = model(tokens, targets)
            loss.backward()
            grads.append((loss.item(), {n: model.w(n).grad.clone() for n in model.names}))
        (l0, g0), (l1, g1) = grads
        worst = max(float((g0[n] - g1[n]).norm() / g1[n].norm()) for n in model.names)
        print(f"--check {gemm}: loss {l0:.6f} vs dense {l1:.6f}, worst grad rel err {worst:.2e}")
        assert abs(l0 - l1) < 1e-5 and worst < 1e-4, gemm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--topk", type=int, default=2)
    ap.add_argument("--moe-ffn", type=int, default=1024)
    ap.add_argument("--aux-coeff", type=float, default=1e-2)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gemm", choices=list(PATHS), default="onednn")
    ap.add_argument("--check", action="store_true", help="looped vs dense MoE block, then exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.check:
        check_dense_equivalence()
        return

    model = MoEGPT(args.vocab, args.hidden, args.layers, args.heads, args.kv_heads, args.experts, args.topk,
                   args.moe_ffn, args.aux_coeff, args.seq, args.gemm)
    run_and_report(model, args)

if __name__ == "__main__":
    main()
