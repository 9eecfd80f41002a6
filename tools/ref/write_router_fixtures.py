"""Writes tests/fixtures/moe_router.bin: reference outputs and gradients of Megatron-Core's MoE
router (megatron/core/transformer/moe/{router,moe_utils}.py @ d98e8a64), transcribed to plain
PyTorch: topk_routing_with_score_function, group_limited_topk, compute_routing_scores_for_aux_loss,
switch_load_balancing_loss_func (aux_loss, seq_aux_loss, global_aux_loss), z_loss_func and
apply_router_token_dropping (single rank: TP = CP = DP = 1). Autograd gives the gradients.

Every case <c> stores:
  <c>/cfg        f32[16]: topk, score(0 softmax,1 sigmoid,2 sqrtsoftplus), pre_softmax, num_groups,
                 group_topk, topk_scaling_factor, enable_bias, lb_aux_coeff, lb_seq_coeff,
                 lb_global_coeff (-1 = type not listed), z_coeff, capacity_factor,
                 drop_policy(0 probs,1 position), pad_to_capacity, seq_length, aux_grad_scale
  <c>/x (T,H), <c>/weight (E,H), <c>/expert_bias (E), <c>/dprobs (T,E)
  <c>/x_prev (T,H)      only for global_aux_loss: an earlier micro-batch (forward only)
  <c>/padding_mask (T) i32   only where given: 1 = padding token (excluded from every load-balancing
                 loss and z_loss). Token counts as get_tokens_per_expert_and_token_count with a mask:
                 aux_loss T = valid tokens; seq_aux_loss T = valid tokens / B (one value shared by
                 every sequence); global_aux_loss T = this micro-batch's valid tokens
  <c>/padding_mask_prev (T) i32   x_prev's mask (global_aux_loss with padding)
  <c>/probs (T,E), <c>/routing_map (T,E) i32, <c>/tokens_per_expert (E) i64,
  <c>/aux_loss, <c>/z_loss (scalars), <c>/dx (T,H), <c>/dweight (E,H)
The loss differentiated is sum(dprobs * probs) + aux_grad_scale * (aux_loss + z_loss)
(MoEAuxLossAutoScaler's scale multiplies the aux/z gradients).

Token order: foundry flattens (B, S) batch-major, t = b*S + s; Megatron's tokens are (S, B)
sequence-major. seq_aux_loss is transcribed on Megatron's layout after permuting the rows.
Ties (drop policies): "position" keeps each expert's earliest routed tokens, then (padding) the
earliest unrouted ones, Megatron's intent for topk(map.int(), C); "probs" breaks ties among equal
probabilities (zeros, when padding) by the earliest token. Computed in float64.

    /usr/bin/python3 tools/ref/write_router_fixtures.py
"""
import math
import os

import torch
import torch.nn.functional as F

from fixture import write_fixture

torch.set_default_dtype(torch.float64)
SCORES = {"softmax": 0, "sigmoid": 1, "sqrtsoftplus": 2}


def group_limited_topk(scores, topk, num_tokens, num_experts, num_groups, group_topk):
    group_scores = scores.view(num_tokens, num_groups, -1).topk(topk // group_topk, dim=-1)[0].sum(dim=-1)
    group_idx = torch.topk(group_scores, k=group_topk, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores)
    group_mask.scatter_(1, group_idx, 1)
    score_mask = (group_mask.unsqueeze(-1).expand(num_tokens, num_groups, num_experts // num_groups)
                  .reshape(num_tokens, -1))
    masked_scores = scores.masked_fill(~score_mask.bool(), float("-inf"))
    return torch.topk(masked_scores, k=topk, dim=-1)


def topk_routing_with_score_function(logits, topk, use_pre_softmax, num_groups, group_topk, scaling_factor,
                                     score_function, expert_bias):
    num_tokens, num_experts = logits.shape

    def compute_topk(scores, topk):
        if group_topk:
            return group_limited_topk(scores, topk, num_tokens, num_experts, num_groups, group_topk)
        return torch.topk(scores, k=topk, dim=1)

    if score_function == "softmax":
        if use_pre_softmax:
            scores = torch.softmax(logits, dim=-1)
            probs, top_indices = compute_topk(scores, topk)
        else:
            scores, top_indices = compute_topk(logits, topk)
            probs = torch.softmax(scores, dim=-1)
    else:
        if score_function == "sigmoid":
            scores = torch.sigmoid(logits)
        else:
            scores = torch.sqrt(F.softplus(logits))
        if expert_bias is not None:
            _, top_indices = compute_topk(scores + expert_bias, topk)
            scores = torch.gather(scores, dim=1, index=top_indices)
        else:
            scores, top_indices = compute_topk(scores, topk)
        probs = scores / (scores.sum(dim=-1, keepdim=True) + 1e-20) if topk > 1 else scores
    if scaling_factor:
        probs = probs * scaling_factor
    routing_probs = torch.zeros_like(logits).scatter(1, top_indices, probs)
    routing_map = torch.zeros_like(logits).int().scatter(1, top_indices, 1).bool()
    return routing_probs, routing_map


def compute_routing_scores_for_aux_loss(logits, topk, score_function, padding_mask=None):
    if score_function == "softmax":
        scores = torch.softmax(logits, dim=-1)
    else:
        scores = torch.sigmoid(logits) if score_function == "sigmoid" else torch.sqrt(F.softplus(logits))
        scores = scores / (scores.sum(dim=-1, keepdim=True) + 1e-20)
    _, top_indices = torch.topk(scores, k=topk, dim=1)
    routing_map = torch.zeros_like(logits).int().scatter(1, top_indices, 1).bool()
    if padding_mask is not None:  # True = padding
        valid_mask = (~padding_mask).unsqueeze(-1)
        routing_map = routing_map * valid_mask
        scores = scores * valid_mask
    return routing_map, scores


def switch_load_balancing_loss_func(probs, tokens_per_expert, total_num_tokens, topk, num_experts, coeff,
                                    padding_mask=None):
    if padding_mask is not None:  # True = valid here (Megatron passes the inverted mask)
        probs = probs * padding_mask.unsqueeze(-1)
    aggregated_probs_per_expert = probs.sum(dim=0)
    return torch.sum(aggregated_probs_per_expert * tokens_per_expert) * (
        num_experts * coeff / (topk * total_num_tokens * total_num_tokens))


def z_loss_func(logits, z_loss_coeff, padding_mask=None):
    z_loss_values = torch.square(torch.logsumexp(logits, dim=-1))
    if padding_mask is not None:  # True = padding
        valid_mask = ~padding_mask
        z_loss_values = z_loss_values * valid_mask
        return z_loss_values.sum() / torch.clamp(valid_mask.sum(), min=1.0) * z_loss_coeff
    return torch.mean(z_loss_values) * z_loss_coeff


def get_capacity(num_tokens, num_experts, capacity_factor):
    return math.ceil((num_tokens / num_experts) * capacity_factor)


def keep_top(values, capacity):
    """Top-`capacity` rows of each column, ties broken by the earliest row (stable)."""
    idx = torch.sort(values, dim=0, descending=True, stable=True)[1][:capacity]
    return torch.zeros_like(values).scatter(0, idx, 1).bool()


def apply_router_token_dropping(routing_probs, routing_map, router_topk, capacity_factor, drop_policy,
                                pad_to_capacity):
    num_tokens, num_experts = routing_probs.shape
    expert_capacity = get_capacity(num_tokens * router_topk, num_experts, capacity_factor)
    if expert_capacity >= num_tokens:
        capacity_mask = torch.ones_like(routing_map)
    elif drop_policy == "probs":
        capacity_mask = keep_top(routing_probs.detach(), expert_capacity)
    else:  # position: earliest routed tokens, then earliest unrouted (fillers)
        rank = torch.arange(num_tokens, 0, -1).unsqueeze(1).to(routing_probs.dtype)
        capacity_mask = keep_top(routing_map.to(routing_probs.dtype) * (num_tokens + 1) + rank, expert_capacity)
    if pad_to_capacity:
        final_map = capacity_mask
    else:
        final_map = torch.logical_and(routing_map, capacity_mask)
    return routing_probs * final_map, final_map


class GlobalAux:
    def __init__(self, E):
        self.tokens = torch.zeros(E)
        self.steps = 0


def router_forward(x, weight, c, bias, gstate, pad=None):
    T = x.shape[0]
    E = weight.shape[0]
    k = c["topk"]
    logits = x @ weight.t()
    probs, rmap = topk_routing_with_score_function(
        logits, k, c["pre_softmax"], c["num_groups"], c["group_topk"], c["scaling"], c["score"],
        bias if c["bias"] else None)
    if c["cf"]:
        probs, rmap = apply_router_token_dropping(probs, rmap, k, c["cf"], c["policy"], c["pad"])
    aux = torch.zeros(())
    if any(v >= 0 for v in (c["lb_aux"], c["lb_seq"], c["lb_global"])):
        map_aux, s = compute_routing_scores_for_aux_loss(logits, k, c["score"], pad)
        if c["lb_aux"] >= 0:
            # get_tokens_per_expert_and_token_count: with a padding mask T = valid tokens
            n = map_aux.sum(0).to(s.dtype)
            total = n.sum() / k if pad is not None else T
            aux = aux + switch_load_balancing_loss_func(s, n, total, k, E, c["lb_aux"],
                                                        None if pad is None else ~pad)
        if c["lb_seq"] >= 0:
            # _apply_seq_aux_loss: (S, B*E) views, each (sequence, expert) a pseudo-expert;
            # get_tokens_per_expert_and_token_count(topk = k * B): with a padding mask the token
            # count is map.sum() / (k * B) = valid tokens / B (the mean over the batch's sequences,
            # shared by all of them), else S.
            S = c["seq_length"]
            B = T // S
            perm = torch.arange(T).view(B, S).t().reshape(-1)  # Megatron (S, B) order
            s_m, map_m = s[perm], map_aux[perm]
            sa = s_m.reshape(S, -1)
            n = map_m.reshape(S, -1).sum(dim=0).to(s.dtype)
            total = n.sum() / (k * B) if pad is not None else S
            aux = aux + switch_load_balancing_loss_func(sa, n, total, k, E, c["lb_seq"]) / B
        if c["lb_global"] >= 0:
            # _apply_global_aux_loss: counts (padding excluded) accumulate over the micro-batches;
            # the token count is this micro-batch's: map.sum() / k = valid tokens with a padding
            # mask, else T.
            n_mb = map_aux.sum(0).to(s.dtype)
            total = n_mb.sum() / k if pad is not None else T
            gstate.tokens = gstate.tokens + n_mb
            gstate.steps += 1
            aux = aux + switch_load_balancing_loss_func(s, gstate.tokens / gstate.steps, total, k, E,
                                                        c["lb_global"])
    z = z_loss_func(logits, c["z"], pad) if c["z"] else torch.zeros(())
    return probs, rmap, aux, z


DEFAULT = dict(T=23, H=11, E=8, topk=2, score="softmax", pre_softmax=False, num_groups=0, group_topk=0,
               scaling=0.0, bias=False, lb_aux=0.01, lb_seq=-1.0, lb_global=-1.0, z=1e-3, cf=0.0,
               policy="probs", pad=False, seq_length=23, scale=0.5, padding=False, pad_seq=-1)

CASES = {
    "softmax_post": {},
    "softmax_pre": dict(pre_softmax=True),
    "softmax_pre_k1": dict(pre_softmax=True, topk=1),
    "sigmoid": dict(score="sigmoid"),
    "sigmoid_k1": dict(score="sigmoid", topk=1, E=7),
    "softmax_groups": dict(E=12, topk=4, num_groups=4, group_topk=2),
    "sigmoid_groups_bias_scaled": dict(score="sigmoid", E=12, topk=4, num_groups=4, group_topk=2, bias=True,
                                       scaling=2.5),
    "sigmoid_bias": dict(score="sigmoid", bias=True, topk=3),
    "softmax_scaled_noloss": dict(scaling=1.7, lb_aux=-1.0, z=0.0),
    "cap_probs": dict(cf=1.0, E=6),
    "cap_position": dict(cf=1.0, E=6, policy="position"),
    "cap_probs_pad": dict(cf=0.8, E=6, pad=True, score="sigmoid"),
    "cap_position_pad": dict(cf=1.3, E=6, pad=True, policy="position"),
    "seq_aux": dict(T=21, seq_length=7, lb_aux=-1.0, lb_seq=0.02, score="sigmoid", topk=3),
    "aux_and_seq_aux": dict(T=20, seq_length=5, lb_seq=0.03),
    "global_aux": dict(lb_aux=-1.0, lb_global=0.05),
    "softmax_padding_mask": dict(padding=True),
    "sigmoid_padding_mask": dict(score="sigmoid", topk=3, padding=True, cf=1.0),
    "sqrtsoftplus": dict(score="sqrtsoftplus", topk=3),
    "sqrtsoftplus_bias_groups": dict(score="sqrtsoftplus", E=12, topk=4, num_groups=3, group_topk=2, bias=True,
                                     lb_aux=-1.0, lb_seq=0.01, seq_length=23),
    # seq_aux_loss / global_aux_loss with a padding mask (appended: earlier cases keep their seeds).
    "seq_aux_padding_mask": dict(T=21, seq_length=7, lb_aux=-1.0, lb_seq=0.02, score="sigmoid", topk=3,
                                 padding=True),
    "aux_and_seq_aux_padding_mask": dict(T=20, seq_length=5, lb_seq=0.03, padding=True, pad_seq=2),
    "global_aux_padding_mask": dict(lb_aux=-1.0, lb_global=0.05, padding=True),
    "sqrtsoftplus_all_lb_padding_mask": dict(score="sqrtsoftplus", topk=3, T=24, seq_length=6, lb_seq=0.02,
                                             lb_global=0.05, padding=True, cf=1.2),
}


def main():
    out = {}
    for ci, (name, over) in enumerate(CASES.items()):
        c = dict(DEFAULT, **over)
        g = torch.Generator().manual_seed(1000 + ci)
        T, H, E = c["T"], c["H"], c["E"]
        x = torch.randn(T, H, generator=g).float().double()
        weight = (torch.randn(E, H, generator=g) * 0.5).float().double().requires_grad_()
        bias = (torch.randn(E, generator=g) * 0.3).float().double() if c["bias"] else torch.zeros(E)
        dprobs = torch.randn(T, E, generator=g).float().double()
        x.requires_grad_()
        pad = (torch.rand(T, generator=g) < 0.3) if c["padding"] else None
        if c["pad_seq"] >= 0:  # one whole sequence of padding
            S = c["seq_length"]
            pad[c["pad_seq"] * S:(c["pad_seq"] + 1) * S] = True
        gstate = GlobalAux(E)
        x_prev = pad_prev = None
        if c["lb_global"] >= 0:
            x_prev = torch.randn(T, H, generator=g).float().double()
            if c["padding"]:
                pad_prev = torch.rand(T, generator=g) < 0.5
            router_forward(x_prev, weight.detach(), c, bias, gstate, pad_prev)
        probs, rmap, aux, z = router_forward(x, weight, c, bias, gstate, pad)
        loss = (probs * dprobs).sum() + c["scale"] * (aux + z)
        dx, dw = torch.autograd.grad(loss, [x, weight])
        cfg = torch.tensor([c["topk"], SCORES[c["score"]], float(c["pre_softmax"]), c["num_groups"],
                            c["group_topk"], c["scaling"], float(c["bias"]), c["lb_aux"], c["lb_seq"],
                            c["lb_global"], c["z"], c["cf"], float(c["policy"] == "position"), float(c["pad"]),
                            c["seq_length"], c["scale"]], dtype=torch.float32)
        f = lambda t: t.detach().float()
        out[f"{name}/cfg"] = cfg
        out[f"{name}/x"] = f(x)
        out[f"{name}/weight"] = f(weight)
        out[f"{name}/expert_bias"] = f(bias)
        out[f"{name}/dprobs"] = f(dprobs)
        if x_prev is not None:
            out[f"{name}/x_prev"] = f(x_prev)
        if pad is not None:
            out[f"{name}/padding_mask"] = pad.to(torch.int32)
        if pad_prev is not None:
            out[f"{name}/padding_mask_prev"] = pad_prev.to(torch.int32)
        out[f"{name}/probs"] = f(probs)
        out[f"{name}/routing_map"] = rmap.to(torch.int32)
        out[f"{name}/tokens_per_expert"] = rmap.sum(0).to(torch.int64)
        out[f"{name}/aux_loss"] = f(aux)
        out[f"{name}/z_loss"] = f(z)
        out[f"{name}/dx"] = f(dx)
        out[f"{name}/dweight"] = f(dw)
        print(f"{name}: aux {aux.item():.6g} z {z.item():.6g} routed {int(rmap.sum())}")
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "moe_router.bin")
    write_fixture(path, out)
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
