"""Hugging Face Transformers' causal-LM forward pass for Llama, Qwen2, Qwen3, Mixtral and Qwen3-MoE,
transcribed into plain PyTorch (no transformers package) and computed in float64. foundry's
Hugging Face import/export (checkpoint/hf, `foundry convert`) is checked against it through the
directories and logits written by write_hf_fixtures.py, and check_hf_dir.py runs it on any HF dir.

Input: the model's config.json as a dict, a state dict under Hugging Face names, token ids of one
causal sequence (positions 0..T-1, no padding, no cache). Output: logits (T, V) float64.

Transcribed from transformers 4.51 (models/{llama,qwen2,qwen3,mixtral,qwen3_moe}/modeling_*.py,
modeling_rope_utils.py). Letters: T tokens, H hidden_size, NH num_attention_heads,
NKV num_key_value_heads (G = NH / NKV query heads per KV head), HD head_dim, F intermediate_size,
E experts, k num_experts_per_tok, Fm moe_intermediate_size (Qwen3-MoE) / intermediate_size (Mixtral).

  x0        = embed_tokens[ids]                                           (T, H)
  per layer:
    h       = x + attn(rmsnorm(x, input_layernorm))                       pre-norm residual
    x       = h + mlp(rmsnorm(h, post_attention_layernorm))
  logits    = rmsnorm(x, model.norm) lm_head^T       lm_head = embed_tokens if tie_word_embeddings

  rmsnorm(x, w) = w * x / sqrt(mean(x^2) + rms_norm_eps)                  (LlamaRMSNorm)

  attn: q = x Wq^T (+bq), k = x Wk^T (+bk), v = x Wv^T (+bv)              (T, NH*HD), (T, NKV*HD)
        Qwen3 / Qwen3-MoE: q_h = rmsnorm(q_h, q_norm), k_h = rmsnorm(k_h, k_norm) per head over HD,
        before RoPE (Qwen3Attention)
        RoPE (rotate-half, LlamaRotaryEmbedding / apply_rotary_pos_emb):
          inv_freq[i] = rope_theta^(-2i/HD), i < HD/2, rescaled by rope_scaling (below)
          ang[t, i]   = t * inv_freq[i];  cos = cos(cat(ang, ang)), sin = sin(cat(ang, ang))   (T, HD)
          q' = q cos + rotate_half(q) sin,   rotate_half(u) = cat(-u[HD/2:], u[:HD/2])
        head h uses KV head h // G (repeat_kv); scores = q k^T / sqrt(HD), causal mask, softmax,
        o = cat_h(P_h v_h) Wo^T (+bo)
  rope_scaling (modeling_rope_utils.py), absent / "default": unchanged; "linear": inv_freq / factor;
        "llama3" (_compute_llama3_parameters), L0 = original_max_position_embeddings:
          wavelen = 2 pi / inv_freq;  lo = L0 / low_freq_factor;  hi = L0 / high_freq_factor
          wavelen > lo            -> inv_freq / factor
          wavelen < hi            -> inv_freq
          otherwise (hi..lo)      -> (1 - s) inv_freq / factor + s inv_freq,
                                     s = (L0 / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        (attention_factor 1 for all three.)
  dense mlp: down(silu(gate(x)) * up(x))                                  (LlamaMLP, F)
  Mixtral sparse block (MixtralSparseMoeBlock), per token:
        p = softmax(x Wg^T) over E;  w, idx = topk(p, k);  w /= sum(w)
        y = sum_j w_j * w2_e(silu(w1_e x) * w3_e x),  e = idx_j
  Qwen3-MoE sparse block (Qwen3MoeSparseMoeBlock): the same with gate_proj/up_proj/down_proj and
        w /= sum(w) only when norm_topk_prob. Layer l is sparse iff l not in mlp_only_layers and
        num_experts > 0 and (l + 1) % decoder_sparse_step == 0; dense layers use intermediate_size,
        experts moe_intermediate_size.

Deviation: HF computes inv_freq and cos/sin in float32 and the rest in the model dtype; here
everything is float64 (from the weights as stored, e.g. bf16 values exactly). Router jitter
(training only), dropout, sliding windows (use_sliding_window false in every fixture; an enabled
one is rejected) and the aux loss are not part of the logits.

Run directly for the self-check: every architecture against an independent token-by-token float64
loop (explicit per-pair rotations, per-key softmax, per-expert routing), plus the llama3 inverse
frequencies against a scalar transcription.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

ARCHS = {
    # architectures[0] -> model_type, as Transformers writes them.
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "MixtralForCausalLM": "mixtral",
    "Qwen3MoeForCausalLM": "qwen3_moe",
}


def _fail(msg):
    raise ValueError(msg)


def model_type(cfg: dict) -> str:
    mt = cfg.get("model_type")
    if mt not in ARCHS.values():
        _fail(f"config.json: model_type {mt!r} is not one of {sorted(ARCHS.values())}")
    archs = cfg.get("architectures")
    if archs is not None and (len(archs) != 1 or ARCHS.get(archs[0]) != mt):
        _fail(f"config.json: architectures {archs} does not match model_type {mt!r}")
    return mt


def head_dim(cfg: dict) -> int:
    # Llama / Mixtral / Qwen2 / Qwen3(-MoE): getattr(config, "head_dim", None) or hidden // heads.
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def num_kv_heads(cfg: dict) -> int:
    return cfg.get("num_key_value_heads") or cfg["num_attention_heads"]


def is_sparse_layer(cfg: dict, layer: int) -> bool:
    mt = model_type(cfg)
    if mt == "mixtral":
        return True
    if mt == "qwen3_moe":
        return (layer not in cfg.get("mlp_only_layers", [])) and cfg["num_experts"] > 0 and \
            (layer + 1) % cfg.get("decoder_sparse_step", 1) == 0
    return False


def rope_inv_freq(cfg: dict) -> torch.Tensor:
    """(HD/2) float64 inverse frequencies after rope_scaling (modeling_rope_utils.py)."""
    hd = head_dim(cfg)
    if cfg.get("partial_rotary_factor", 1.0) != 1.0:
        _fail(f"config.json: partial_rotary_factor {cfg['partial_rotary_factor']} is not supported")
    inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = cfg.get("rope_scaling")
    if rs is None:
        return inv_freq
    rtype = rs.get("rope_type", rs.get("type"))
    if rtype == "default":
        return inv_freq
    if rtype == "linear":
        return inv_freq / rs["factor"]
    if rtype != "llama3":
        _fail(f"config.json: rope_scaling rope_type {rtype!r} is not supported (default, linear, llama3)")
    factor, lo_f, hi_f = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old_len = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_len / lo_f
    high_freq_wavelen = old_len / hi_f
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - lo_f) / (hi_f - lo_f)
    smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def expected_names(cfg: dict) -> list:
    """Every parameter name the HF class has (strict load: no missing, no unexpected)."""
    mt = model_type(cfg)
    names = ["model.embed_tokens.weight"]
    bias_qkv = mt == "qwen2" or cfg.get("attention_bias", False)
    bias_o = mt != "qwen2" and cfg.get("attention_bias", False)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        names.append(p + "input_layernorm.weight")
        for m in "qkv":
            names.append(p + f"self_attn.{m}_proj.weight")
            if bias_qkv:
                names.append(p + f"self_attn.{m}_proj.bias")
        names.append(p + "self_attn.o_proj.weight")
        if bias_o:
            names.append(p + "self_attn.o_proj.bias")
        if mt in ("qwen3", "qwen3_moe"):
            names += [p + "self_attn.q_norm.weight", p + "self_attn.k_norm.weight"]
        names.append(p + "post_attention_layernorm.weight")
        if mt == "mixtral":
            names.append(p + "block_sparse_moe.gate.weight")
            for e in range(cfg["num_local_experts"]):
                names += [p + f"block_sparse_moe.experts.{e}.{w}.weight" for w in ("w1", "w2", "w3")]
        elif is_sparse_layer(cfg, i):
            names.append(p + "mlp.gate.weight")
            for e in range(cfg["num_experts"]):
                names += [p + f"mlp.experts.{e}.{w}_proj.weight" for w in ("gate", "up", "down")]
        else:
            mlp_bias = mt == "llama" and cfg.get("mlp_bias", False)
            for w in ("gate", "up", "down"):
                names.append(p + f"mlp.{w}_proj.weight")
                if mlp_bias:
                    names.append(p + f"mlp.{w}_proj.bias")
    names.append("model.norm.weight")
    if not cfg.get("tie_word_embeddings", False):
        names.append("lm_head.weight")
    return names


def expected_shapes(cfg: dict) -> dict:
    H, NH, NKV, HD, V = cfg["hidden_size"], cfg["num_attention_heads"], num_kv_heads(cfg), head_dim(cfg), cfg["vocab_size"]
    F = cfg["intermediate_size"]
    mt = model_type(cfg)
    Fm = cfg["moe_intermediate_size"] if mt == "qwen3_moe" else F
    E = cfg.get("num_local_experts", cfg.get("num_experts", 0))
    shapes = {}
    for n in expected_names(cfg):
        leaf = n.rsplit(".", 2)[-2] + "." + n.rsplit(".", 1)[-1]
        if n in ("model.embed_tokens.weight", "lm_head.weight"):
            s = (V, H)
        elif leaf in ("input_layernorm.weight", "post_attention_layernorm.weight") or n == "model.norm.weight":
            s = (H,)
        elif leaf in ("q_norm.weight", "k_norm.weight"):
            s = (HD,)
        elif leaf == "q_proj.weight":
            s = (NH * HD, H)
        elif leaf in ("k_proj.weight", "v_proj.weight"):
            s = (NKV * HD, H)
        elif leaf == "q_proj.bias":
            s = (NH * HD,)
        elif leaf in ("k_proj.bias", "v_proj.bias"):
            s = (NKV * HD,)
        elif leaf == "o_proj.weight":
            s = (H, NH * HD)
        elif leaf == "o_proj.bias":
            s = (H,)
        elif leaf == "gate.weight":
            s = (E, H)
        elif ".experts." in n:
            s = (Fm, H) if leaf.split(".")[0] in ("w1", "w3", "gate_proj", "up_proj") else (H, Fm)
        elif leaf in ("gate_proj.weight", "up_proj.weight"):
            s = (F, H)
        elif leaf == "down_proj.weight":
            s = (H, F)
        elif leaf in ("gate_proj.bias", "up_proj.bias"):
            s = (F,)
        elif leaf == "down_proj.bias":
            s = (H,)
        else:
            _fail(f"internal: no shape rule for {n}")
        shapes[n] = s
    return shapes


def check_state_dict(cfg: dict, sd: dict) -> None:
    shapes = expected_shapes(cfg)
    missing = [n for n in shapes if n not in sd]
    unexpected = [n for n in sd if n not in shapes]
    if missing or unexpected:
        _fail(f"state dict vs config ({model_type(cfg)}): missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
              f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
    for n, s in shapes.items():
        if tuple(sd[n].shape) != s:
            _fail(f"{n}: shape {tuple(sd[n].shape)}, config.json implies {s}")


def check_config(cfg: dict) -> None:
    model_type(cfg)
    if cfg.get("hidden_act", "silu") != "silu":
        _fail(f"config.json: hidden_act {cfg['hidden_act']!r} is not supported (silu)")
    if cfg.get("use_sliding_window", False):
        _fail("config.json: use_sliding_window true is not supported")
    if cfg["num_attention_heads"] % num_kv_heads(cfg) != 0:
        _fail(f"config.json: num_attention_heads {cfg['num_attention_heads']} not a multiple of "
              f"num_key_value_heads {num_kv_heads(cfg)}")


def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def swiglu(x, w_gate, w_up, w_down):
    return (torch.nn.functional.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def sparse_block(cfg, x, gate_w, experts):
    """x (T, H); gate_w (E, H); experts: list of (w_gate, w_up, w_down). -> y (T, H), (idx (T, k), probs (T, E))."""
    mt = model_type(cfg)
    k = cfg["num_experts_per_tok"]
    probs = torch.softmax(x @ gate_w.T, dim=-1)                  # (T, E)
    w, idx = torch.topk(probs, k, dim=-1)                        # (T, k)
    if mt == "mixtral" or cfg.get("norm_topk_prob", False):
        w = w / w.sum(dim=-1, keepdim=True)
    y = torch.zeros_like(x)
    for e, (wg, wu, wd) in enumerate(experts):
        tok, slot = torch.nonzero(idx == e, as_tuple=True)
        if tok.numel() == 0:
            continue
        y.index_add_(0, tok, swiglu(x[tok], wg, wu, wd) * w[tok, slot, None])
    return y, (idx, probs)


def forward(cfg: dict, sd: dict, ids, return_topk=False):
    """Logits (T, V) float64 for token ids (T,) of one causal sequence at positions 0..T-1.
    return_topk: also {sparse layer: (chosen experts (T, k) by descending probability, probs (T, E))}."""
    check_config(cfg)
    check_state_dict(cfg, sd)
    mt = model_type(cfg)
    W = {n: t.detach().to(torch.float64) for n, t in sd.items()}
    ids = torch.as_tensor(ids, dtype=torch.long)
    T = ids.shape[0]
    H, NH, NKV, HD = cfg["hidden_size"], cfg["num_attention_heads"], num_kv_heads(cfg), head_dim(cfg)
    G, eps = NH // NKV, cfg["rms_norm_eps"]
    if int(ids.min()) < 0 or int(ids.max()) >= cfg["vocab_size"]:
        _fail(f"token ids must be in [0, {cfg['vocab_size']})")
    ang = torch.arange(T, dtype=torch.float64)[:, None] * rope_inv_freq(cfg)[None, :]   # (T, HD/2)
    cos, sin = torch.cos(torch.cat((ang, ang), -1)), torch.sin(torch.cat((ang, ang), -1))  # (T, HD)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    topk = {}

    x = W["model.embed_tokens.weight"][ids]                                   # (T, H)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rmsnorm(x, W[p + "input_layernorm.weight"], eps)

        def proj(name):
            y = a @ W[p + f"self_attn.{name}.weight"].T
            b = W.get(p + f"self_attn.{name}.bias")
            return y if b is None else y + b

        q = proj("q_proj").view(T, NH, HD).transpose(0, 1)                    # (NH, T, HD)
        k = proj("k_proj").view(T, NKV, HD).transpose(0, 1)                   # (NKV, T, HD)
        v = proj("v_proj").view(T, NKV, HD).transpose(0, 1)
        if mt in ("qwen3", "qwen3_moe"):
            q = rmsnorm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rmsnorm(k, W[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(G, dim=0)                                     # repeat_kv: head h -> h // G
        v = v.repeat_interleave(G, dim=0)
        s = (q @ k.transpose(1, 2)) * HD ** -0.5                              # (NH, T, T)
        s = s.masked_fill(~causal, float("-inf"))
        o = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, NH * HD)
        o = o @ W[p + "self_attn.o_proj.weight"].T
        if p + "self_attn.o_proj.bias" in W:
            o = o + W[p + "self_attn.o_proj.bias"]
        x = x + o

        m = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        if mt == "mixtral":
            q_ = p + "block_sparse_moe."
            experts = [(W[q_ + f"experts.{e}.w1.weight"], W[q_ + f"experts.{e}.w3.weight"],
                        W[q_ + f"experts.{e}.w2.weight"]) for e in range(cfg["num_local_experts"])]
            y, topk[i] = sparse_block(cfg, m, W[q_ + "gate.weight"], experts)
        elif is_sparse_layer(cfg, i):
            q_ = p + "mlp."
            experts = [tuple(W[q_ + f"experts.{e}.{w}_proj.weight"] for w in ("gate", "up", "down"))
                       for e in range(cfg["num_experts"])]
            y, topk[i] = sparse_block(cfg, m, W[q_ + "gate.weight"], experts)
        else:
            q_ = p + "mlp."
            g, u = m @ W[q_ + "gate_proj.weight"].T, m @ W[q_ + "up_proj.weight"].T
            if q_ + "gate_proj.bias" in W:
                g, u = g + W[q_ + "gate_proj.bias"], u + W[q_ + "up_proj.bias"]
            y = (torch.nn.functional.silu(g) * u) @ W[q_ + "down_proj.weight"].T
            if q_ + "down_proj.bias" in W:
                y = y + W[q_ + "down_proj.bias"]
        x = x + y
    x = rmsnorm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else W["lm_head.weight"]
    logits = x @ head.T                                                       # (T, V)
    return (logits, topk) if return_topk else logits


# ----------------------------------------------------------------------------------------------
# Reading a Hugging Face model directory (own safetensors reader: no dependency).

ST_DTYPES = {"F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2),
             "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8), "I32": (torch.int32, 4),
             "I16": (torch.int16, 2), "I8": (torch.int8, 1), "U8": (torch.uint8, 1), "BOOL": (torch.bool, 1)}
RAW_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def read_safetensors(path: str):
    """-> (dict name -> tensor in its stored dtype, metadata dict). Checks offsets and sizes."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        _fail(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if 8 + n > len(data):
        _fail(f"{path}: header length {n} exceeds the file size {len(data)}")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base, out = 8 + n, {}
    for name, info in header.items():
        if info["dtype"] not in ST_DTYPES:
            _fail(f"{path}: tensor {name} dtype {info['dtype']} is not supported here")
        dt, size = ST_DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        numel = 1
        for d in info["shape"]:
            numel *= d
        if e - b != numel * size or base + e > len(data):
            _fail(f"{path}: tensor {name} data_offsets {b}..{e} do not fit shape {info['shape']} {info['dtype']}")
        raw = np.frombuffer(data, dtype=np.uint8, count=e - b, offset=base + b).copy()
        if dt == torch.bool:
            t = torch.from_numpy(raw).to(torch.bool)
        else:
            t = torch.from_numpy(raw).view(RAW_INT[size]).view(dt) if size > 1 else torch.from_numpy(raw).view(dt)
        out[name] = t.reshape(info["shape"])
    return out, meta


def load_hf_dir(path: str):
    """-> (config dict, state dict in stored dtypes, {name: file}). Sharded (index) or single file."""
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            wmap = json.load(f)["weight_map"]
        files = sorted(set(wmap.values()))
    elif os.path.exists(os.path.join(path, "model.safetensors")):
        wmap, files = None, ["model.safetensors"]
    else:
        _fail(f"{path}: neither model.safetensors.index.json nor model.safetensors")
    sd, where = {}, {}
    for fn in files:
        tensors, _ = read_safetensors(os.path.join(path, fn))
        for n, t in tensors.items():
            if n in sd:
                _fail(f"{path}: tensor {n} in both {where[n]} and {fn}")
            if wmap is not None and wmap.get(n) != fn:
                _fail(f"{path}: tensor {n} is in {fn} but the index maps it to {wmap.get(n)}")
            sd[n], where[n] = t, fn
    if wmap is not None:
        lost = [n for n in wmap if n not in sd]
        if lost:
            _fail(f"{path}: the index lists {lost[:5]} but no shard holds them")
    return cfg, sd, where


# ----------------------------------------------------------------------------------------------
# Self-check: an independent token-by-token float64 loop.

def _loop_forward(cfg, sd, ids):
    mt = model_type(cfg)
    W = {n: t.to(torch.float64) for n, t in sd.items()}
    H, NH, NKV, HD, eps = cfg["hidden_size"], cfg["num_attention_heads"], num_kv_heads(cfg), head_dim(cfg), \
        cfg["rms_norm_eps"]
    G = NH // NKV
    theta = cfg.get("rope_theta", 10000.0)
    rs = cfg.get("rope_scaling")

    def freq(i):  # scalar llama3 rule, written from the piecewise definition
        f = theta ** (-2.0 * i / HD)
        if rs is None:
            return f
        if rs["rope_type"] == "linear":
            return f / rs["factor"]
        L0 = rs["original_max_position_embeddings"]
        wl = 2 * math.pi / f
        if wl < L0 / rs["high_freq_factor"]:
            return f
        if wl > L0 / rs["low_freq_factor"]:
            return f / rs["factor"]
        s = (L0 / wl - rs["low_freq_factor"]) / (rs["high_freq_factor"] - rs["low_freq_factor"])
        return (1 - s) * f / rs["factor"] + s * f

    def norm(vec, w):
        ms = sum(float(c) * float(c) for c in vec) / len(vec)
        return torch.tensor([float(w[j]) * float(vec[j]) / math.sqrt(ms + eps) for j in range(len(vec))],
                            dtype=torch.float64)

    def rope(vec, t):  # pairs (j, j + HD/2) rotated by angle t * freq(j)
        out = vec.clone()
        for j in range(HD // 2):
            c, s = math.cos(t * freq(j)), math.sin(t * freq(j))
            a, b = float(vec[j]), float(vec[j + HD // 2])
            out[j], out[j + HD // 2] = a * c - b * s, b * c + a * s
        return out

    def lin(name, vec):
        y = torch.mv(W[name + ".weight"], vec)
        return y + W[name + ".bias"] if name + ".bias" in W else y

    def silu(z):
        return z / (1 + torch.exp(-z))

    def expert(vec, wg, wu, wd):
        return torch.mv(wd, silu(torch.mv(wg, vec)) * torch.mv(wu, vec))

    T = len(ids)
    xs = [W["model.embed_tokens.weight"][int(t)].clone() for t in ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        keys, vals, outs = [], [], []
        for t in range(T):
            a = norm(xs[t], W[p + "input_layernorm.weight"])
            q, k, v = lin(p + "self_attn.q_proj", a), lin(p + "self_attn.k_proj", a), lin(p + "self_attn.v_proj", a)
            kh, vh, qh = [], [], []
            for h in range(NKV):
                kk = k[h * HD:(h + 1) * HD]
                if mt in ("qwen3", "qwen3_moe"):
                    kk = norm(kk, W[p + "self_attn.k_norm.weight"])
                kh.append(rope(kk, t))
                vh.append(v[h * HD:(h + 1) * HD])
            keys.append(kh)
            vals.append(vh)
            o = []
            for h in range(NH):
                qq = q[h * HD:(h + 1) * HD]
                if mt in ("qwen3", "qwen3_moe"):
                    qq = norm(qq, W[p + "self_attn.q_norm.weight"])
                qq = rope(qq, t)
                sc = [float(qq @ keys[u][h // G]) / math.sqrt(HD) for u in range(t + 1)]
                mx = max(sc)
                ex = [math.exp(c - mx) for c in sc]
                o.append(sum(ex[u] / sum(ex) * vals[u][h // G] for u in range(t + 1)))
            outs.append(lin(p + "self_attn.o_proj", torch.cat(o)))
        for t in range(T):
            xs[t] = xs[t] + outs[t]
            m = norm(xs[t], W[p + "post_attention_layernorm.weight"])
            if mt == "mixtral" or is_sparse_layer(cfg, i):
                pre = p + ("block_sparse_moe." if mt == "mixtral" else "mlp.")
                nm = ("w1", "w3", "w2") if mt == "mixtral" else ("gate_proj", "up_proj", "down_proj")
                lg = torch.mv(W[pre + "gate.weight"], m).tolist()
                mx = max(lg)
                pr = [math.exp(c - mx) for c in lg]
                pr = [c / sum(pr) for c in pr]
                order = sorted(range(len(pr)), key=lambda e: (-pr[e], e))[:cfg["num_experts_per_tok"]]
                z = sum(pr[e] for e in order) if (mt == "mixtral" or cfg.get("norm_topk_prob")) else 1.0
                y = torch.zeros(H, dtype=torch.float64)
                for e in order:
                    y = y + pr[e] / z * expert(m, *(W[pre + f"experts.{e}.{w}.weight"] for w in nm))
            else:
                y = lin(p + "mlp.down_proj", silu(lin(p + "mlp.gate_proj", m)) * lin(p + "mlp.up_proj", m))
            xs[t] = xs[t] + y
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return torch.stack([torch.mv(head, norm(x, W["model.norm.weight"])) for x in xs])


def _random_sd(cfg, gen, std=0.1, router_std=0.5):
    sd = {}
    for n, s in expected_shapes(cfg).items():
        if n.endswith("norm.weight"):
            sd[n] = 1.0 + std * torch.randn(s, generator=gen, dtype=torch.float64)
        elif n.endswith("gate.weight"):
            sd[n] = router_std * torch.randn(s, generator=gen, dtype=torch.float64)
        else:
            sd[n] = std * torch.randn(s, generator=gen, dtype=torch.float64)
    return sd


def selfcheck_configs():
    base = dict(vocab_size=50, hidden_size=32, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="silu")
    return {
        "llama": dict(base, model_type="llama", rope_scaling={"rope_type": "llama3", "factor": 8.0,
                      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 100}),
        "qwen2": dict(base, model_type="qwen2", tie_word_embeddings=True),
        "qwen3": dict(base, model_type="qwen3", head_dim=12, num_key_value_heads=1),
        "mixtral": dict(base, model_type="mixtral", num_local_experts=4, num_experts_per_tok=2),
        "qwen3_moe": dict(base, model_type="qwen3_moe", num_hidden_layers=3, num_experts=4, num_experts_per_tok=2,
                          moe_intermediate_size=8, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[1]),
        "qwen3_moe_norm": dict(base, model_type="qwen3_moe", num_experts=6, num_experts_per_tok=3, head_dim=16,
                               moe_intermediate_size=8, norm_topk_prob=True, decoder_sparse_step=2, mlp_only_layers=[]),
    }


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(20261126)
    worst = 0.0
    for name, cfg in selfcheck_configs().items():
        sd = _random_sd(cfg, gen)
        ids = torch.randint(0, cfg["vocab_size"], (11,), generator=gen)
        a = forward(cfg, sd, ids)
        b = _loop_forward(cfg, sd, ids.tolist())
        d = float((a - b).abs().max())
        worst = max(worst, d)
        print(f"{name:15s} T=11 logits max|batched - loop| = {d:.2e}  (|logits| max {float(a.abs().max()):.2f})")
        assert d < 1e-12, name
    # The llama3 rule moves all three frequency bands in the llama config above.
    cfg = selfcheck_configs()["llama"]
    f0 = 1.0 / (10000.0 ** (torch.arange(0, 8, 2, dtype=torch.float64) / 8))
    print("llama3 inv_freq ratio to unscaled:", [round(float(r), 4) for r in rope_inv_freq(cfg) / f0])
    print(f"self-check passed (worst {worst:.2e})")


if __name__ == "__main__":
    main()
