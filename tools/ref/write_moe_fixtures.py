"""Writes the MoE GPT parity fixtures tests/fixtures/moe_{mixtral,qwen3,shared}_tiny.bin, read by
foundry's tests/parity/moe_parity_test.cpp through tests/fixture.h.

    /usr/bin/python3 tools/ref/write_moe_fixtures.py

Model: tools/ref/moe_gpt.py (gpt.py's attention/norms/embedding + HF-semantics sparse MoE blocks,
Megatron's per-layer aux (switch) loss, coeff 1e-2, and z-loss, coeff 1e-3). B=2, S=16, V=64,
H=32, NH=4; weights N(0, 0.1) (output projections 0.1/sqrt(2L)), router N(0, 0.3), so
that routing is far from uniform; seed per case below.
  mixtral: L=2, NKV=2, all MoE, E=4,  k=2, Fm=16                   (MixtralSparseMoeBlock)
  qwen3:   L=2, NKV=1, all MoE, E=16, k=4, Fm=4, q/k RMSNorm      (Qwen3MoeSparseMoeBlock, Qwen3 q_norm /
                                                                    k_norm = Megatron qk_layernorm)
  shared:  L=3, NKV=2, layers [dense, MoE, MoE], F=32, E=8, k=2, Fm=4,
           shared expert Fs=8 with sigmoid gate                    (Qwen2MoeSparseMoeBlock)
Contents of each file (names exact; see tools/ref/README.md):
    config           i64 (14 or 15)  [V, H, L, NH, NKV, F, S, B, tied, E, k, Fm, Fs, shared_gate
                               (, qk_layernorm)]: the 15th entry only when qk norm is on (qwen3), so
                               the other files stay as they were; a reader takes a missing one as 0
    moe_layer_pattern i64 (L)  1 = MoE layer, 0 = dense
    moe_loss_coeffs  f32 (2)   [aux_loss coeff, z_loss coeff]
    adamw            f32 (6)   [lr, beta1, beta2, eps, weight_decay, clip]
    tokens, targets  i32 (B, S)
    <param>          f32       every initial parameter under its Megatron name
    logits           f32 (B*S, V)
    loss             f32 (1)   CE + sum over MoE layers of (aux + z)
    ce_loss          f32 (1)   mean cross-entropy alone
    aux_losses, z_losses f32 (L)  per layer (0 for dense layers), coefficients included
    topk.<l>         i32 (B*S, k)  experts chosen by MoE layer l, by descending score (tokens b*S+s)
    grad.<param>     f32       d loss / d param (loss = CE + aux + z) at the initial parameters
    losses           f32 (10)  total loss before each AdamW step; ce_losses f32 (10) its CE part
    grad_norms       f32 (10)  global grad L2 norm before clipping
    final.<param>    f32       parameters after the 10 steps
The script replays everything in float64 from the stored float32 initial weights and asserts that
every routing decision of every step is the same (and prints the smallest top-k score gap and the
float32-vs-float64 differences), so a correct float32 implementation cannot route differently.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt  # noqa: E402
import moe_gpt  # noqa: E402
from fixture import read_fixture, write_fixture  # noqa: E402

B, S = 2, 16
STEPS = 10
LR, BETA1, BETA2, EPS, WEIGHT_DECAY, CLIP = 1e-2, 0.9, 0.95, 1e-8, 0.1, 1.0
COMMON = dict(vocab=64, hidden=32, heads=4, ffn=32, init_std=0.1, router_init_std=0.3, aux_coeff=1e-2,
              z_coeff=1e-3)
CASES = {
    "moe_mixtral_tiny.bin": (101, moe_gpt.MoEConfig(layers=2, kv_heads=2, num_experts=4, topk=2, moe_ffn=16,
                                                                     **COMMON)),
    "moe_qwen3_tiny.bin": (206, moe_gpt.MoEConfig(layers=2, kv_heads=1, num_experts=16, topk=4, moe_ffn=4,
                                                  qk_norm=True, **COMMON)),
    "moe_shared_tiny.bin": (303, moe_gpt.MoEConfig(layers=3, kv_heads=2, num_experts=8, topk=2, moe_ffn=4, shared_ffn=8,
                                                   shared_gate=True, layer_pattern=(0, 1, 1), **COMMON)),
}


def topk_gap(params, tokens, cfg):
    """Smallest gap, over MoE layers and tokens, between the k-th and (k+1)-th routing score."""
    gaps = []

    def block(x, prm, prefix, c):
        scores = torch.softmax(x @ prm[prefix + "router.weight"].t(), dim=-1)
        top = scores.sort(dim=-1, descending=True).values
        gaps.append(float((top[:, c.topk - 1] - top[:, c.topk]).min()))
        return moe_gpt.moe_block(x, prm, prefix, c)

    with torch.no_grad():
        moe_gpt.forward(params, tokens, cfg, block=block)
    return min(gaps)


def trajectory(params, tokens, targets, cfg):
    """10 AdamW steps with clipping on the same batch (as write_gpt_fixture.py). Returns
    losses, ce losses, grad norms, the routing of every step, the smallest top-k gap."""
    opt = gpt.make_adamw(params, lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=WEIGHT_DECAY)
    losses, ces, norms, routes, gap = [], [], [], [], float("inf")
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        gap = min(gap, topk_gap(params, tokens, cfg))
        logits, moe_losses, routing = moe_gpt.forward(params, tokens, cfg)
        loss, ce = moe_gpt.loss_fn(logits, targets, moe_losses)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP).item())
        losses.append(loss.item())
        ces.append(ce.item())
        routes.append([r.clone() for r in routing])
        opt.step()
    return losses, ces, norms, routes, gap


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def build(seed: int, cfg: moe_gpt.MoEConfig) -> dict:
    gen = torch.Generator().manual_seed(seed)
    params = moe_gpt.init_params(cfg, gen)
    seq = torch.randint(0, cfg.vocab, (B, S + 1), generator=gen, dtype=torch.int64)
    tokens = seq[:, :S].to(torch.int32).contiguous()
    targets = seq[:, 1:].to(torch.int32).contiguous()
    pattern = [int(cfg.is_moe(i)) for i in range(cfg.layers)]

    config = [cfg.vocab, cfg.hidden, cfg.layers, cfg.heads, cfg.kv_heads, cfg.ffn, S, B, int(cfg.tied),
              cfg.num_experts, cfg.topk, cfg.moe_ffn, cfg.shared_ffn, int(cfg.shared_gate)]
    if cfg.qk_norm:  # appended: readers of the 14-entry layout still work
        config.append(1)
    out = {
        "config": torch.tensor(config, dtype=torch.int64),
        "moe_layer_pattern": torch.tensor(pattern, dtype=torch.int64),
        "moe_loss_coeffs": torch.tensor([cfg.aux_coeff, cfg.z_coeff], dtype=torch.float32),
        "adamw": torch.tensor([LR, BETA1, BETA2, EPS, WEIGHT_DECAY, CLIP], dtype=torch.float32),
        "tokens": tokens,
        "targets": targets,
    }
    init = {name: p.clone() for name, p in params.items()}
    out.update(init)

    # Forward and backward at the initial parameters.
    for p in params.values():
        p.requires_grad_(True)
    logits, moe_losses, routing = moe_gpt.forward(params, tokens, cfg)
    loss, ce = moe_gpt.loss_fn(logits, targets, moe_losses)
    loss.backward()
    out["logits"] = logits.detach().clone()
    out["loss"] = loss.detach().reshape(1).clone()
    out["ce_loss"] = ce.detach().reshape(1).clone()
    out["aux_losses"] = torch.tensor([float(a) for a, _ in moe_losses], dtype=torch.float32)
    out["z_losses"] = torch.tensor([float(z) for _, z in moe_losses], dtype=torch.float32)
    moe_layers = [i for i in range(cfg.layers) if cfg.is_moe(i)]
    for i, idx in zip(moe_layers, routing):
        out[f"topk.{i}"] = idx.to(torch.int32).contiguous()
    grads = {name: p.grad.detach().clone() for name, p in params.items()}
    for name, g in grads.items():
        out["grad." + name] = g

    # Ten AdamW steps on the same batch, from the initial parameters.
    for p in params.values():
        p.grad = None
    params = {name: t.clone().requires_grad_(True) for name, t in init.items()}
    losses, ces, norms, routes, gap32 = trajectory(params, tokens, targets, cfg)
    out["losses"] = torch.tensor(losses, dtype=torch.float32)
    out["ce_losses"] = torch.tensor(ces, dtype=torch.float32)
    out["grad_norms"] = torch.tensor(norms, dtype=torch.float32)
    for name, p in params.items():
        out["final." + name] = p.detach().clone()

    # Conditioning: replay in float64 from the stored float32 initial weights.
    p64 = {name: t.double().requires_grad_(True) for name, t in init.items()}
    logits64, ml64, _ = moe_gpt.forward(p64, tokens, cfg)
    moe_gpt.loss_fn(logits64, targets, ml64)[0].backward()
    grad_err = max(rel(grads[n], p64[n].grad) for n in init)
    logit_err = rel(out["logits"], logits64)
    p64 = {name: t.double().requires_grad_(True) for name, t in init.items()}
    losses64, _, _, routes64, gap64 = trajectory(p64, tokens, targets, cfg)
    for step, (r32, r64) in enumerate(zip(routes, routes64)):
        for a, b in zip(r32, r64):
            assert torch.equal(a, b), f"float32 and float64 route differently at step {step + 1}"
    loss_err = max(abs(a - b) / abs(b) for a, b in zip(losses, losses64))
    final_err = max(rel(out["final." + n], p64[n].detach()) for n in init)
    print(f"  f32 vs f64: logits {logit_err:.1e}, grads {grad_err:.1e} (max rel L2 per tensor), "
          f"losses {loss_err:.1e}, final params {final_err:.1e}; routing identical on all {STEPS} steps; "
          f"smallest top-k score gap {min(gap32, gap64):.1e}")
    return out


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    fixtures = os.path.join(root, "tests", "fixtures")
    os.makedirs(fixtures, exist_ok=True)
    for file, (seed, cfg) in CASES.items():
        print(file)
        tensors = build(seed, cfg)
        path = os.path.join(fixtures, file)
        write_fixture(path, tensors)
        back = read_fixture(path)
        assert list(back) == list(tensors) and all(torch.equal(back[k], v) for k, v in tensors.items())
        losses, ces = tensors["losses"].tolist(), tensors["ce_losses"].tolist()
        n_params = sum(v.numel() for k, v in tensors.items() if k.startswith("final."))
        print(f"  wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors, {n_params} parameters); "
              f"loss {losses[0]:.6f} (CE {ces[0]:.6f}) -> {losses[-1]:.6f} (CE {ces[-1]:.6f}) "
              f"after {STEPS - 1} steps")


if __name__ == "__main__":
    main()
