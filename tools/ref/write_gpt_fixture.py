"""Writes the GPT parity fixtures tests/fixtures/gpt_tiny.bin (untied output head) and
tests/fixtures/gpt_tiny_tied.bin (tied), read by foundry's tests/parity through tests/fixture.h.

    /usr/bin/python3 tools/ref/write_gpt_fixture.py

Model: tools/ref/gpt.py with L=2, H=64, NH=4, NKV=2, F=128, V=256; batch B=2, S=16; seed 1234.
Contents of each file (names exact; see tools/ref/README.md):
    config        i64 (9)   [V, H, L, NH, NKV, F, S, B, tied]
    adamw         f32 (6)   [lr, beta1, beta2, eps, weight_decay, clip]
    tokens        i32 (B, S)
    targets       i32 (B, S)     next token of a random sequence of S+1 tokens
    <param>       f32            every initial parameter under its Megatron name
    logits        f32 (B*S, V)   forward with the initial parameters
    loss          f32 (1)        mean cross-entropy over the B*S tokens
    grad.<param>  f32            d loss / d param at the initial parameters (before clipping)
    losses        f32 (10)       loss before each AdamW step 1..10 (losses[0] == loss)
    grad_norms    f32 (10)       global grad L2 norm before clipping, each step
    final.<param> f32            parameters after the 10 steps
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt  # noqa: E402
from fixture import read_fixture, write_fixture  # noqa: E402

SEED = 1234
B, S = 2, 16
STEPS = 10
LR, BETA1, BETA2, EPS, WEIGHT_DECAY, CLIP = 1e-2, 0.9, 0.95, 1e-8, 0.1, 1.0


def build(tied: bool) -> dict:
    cfg = gpt.GPTConfig(vocab=256, hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, tied=tied)
    gen = torch.Generator().manual_seed(SEED)
    params = gpt.init_params(cfg, gen)
    # Random sequence of S+1 tokens per row; the model reads the first S and predicts the next.
    seq = torch.randint(0, cfg.vocab, (B, S + 1), generator=gen, dtype=torch.int64)
    tokens = seq[:, :S].to(torch.int32).contiguous()
    targets = seq[:, 1:].to(torch.int32).contiguous()

    out = {
        "config": torch.tensor([cfg.vocab, cfg.hidden, cfg.layers, cfg.heads, cfg.kv_heads,
                                cfg.ffn, S, B, int(tied)], dtype=torch.int64),
        "adamw": torch.tensor([LR, BETA1, BETA2, EPS, WEIGHT_DECAY, CLIP], dtype=torch.float32),
        "tokens": tokens,
        "targets": targets,
    }
    for name, p in params.items():
        out[name] = p.clone()

    # Forward and backward at the initial parameters.
    for p in params.values():
        p.requires_grad_(True)
    logits = gpt.forward(params, tokens, cfg)
    loss = gpt.loss_fn(logits, targets)
    loss.backward()
    out["logits"] = logits.detach().clone()
    out["loss"] = loss.detach().reshape(1).clone()
    for name, p in params.items():
        out["grad." + name] = p.grad.detach().clone()

    # Ten AdamW steps on the same batch, starting again from the initial parameters.
    for p in params.values():
        p.grad = None
    opt = gpt.make_adamw(params, lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=WEIGHT_DECAY)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = gpt.loss_fn(gpt.forward(params, tokens, cfg), targets)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP).item())
        losses.append(loss.item())
        opt.step()
    out["losses"] = torch.tensor(losses, dtype=torch.float32)
    out["grad_norms"] = torch.tensor(norms, dtype=torch.float32)
    for name, p in params.items():
        out["final." + name] = p.detach().clone()
    return out


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    fixtures = os.path.join(root, "tests", "fixtures")
    os.makedirs(fixtures, exist_ok=True)
    for tied, file in [(False, "gpt_tiny.bin"), (True, "gpt_tiny_tied.bin")]:
        tensors = build(tied)
        path = os.path.join(fixtures, file)
        write_fixture(path, tensors)
        back = read_fixture(path)
        assert list(back) == list(tensors) and all(torch.equal(back[k], v) for k, v in tensors.items())
        losses = tensors["losses"].tolist()
        print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors); "
              f"loss {losses[0]:.6f} -> {losses[-1]:.6f} after {STEPS - 1} steps")


if __name__ == "__main__":
    main()
