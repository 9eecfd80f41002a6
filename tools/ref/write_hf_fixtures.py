"""Writes tiny Hugging Face model directories in the exact layout Transformers saves
(save_pretrained with max_shard_size: config.json, model-0000{1,2}-of-00002.safetensors,
model.safetensors.index.json; plus tokenizer.json / tokenizer_config.json as Hugging Face
tokenizers writes a byte-level BPE) into tests/fixtures/hf/<name>/, and their reference logits into
tests/fixtures/hf_logits.bin (FDRYFIX1). foundry's `convert --from-hf` / `--to-hf` are tested
against them (the logits come from tools/ref/hf_models.py, float64, on the stored weights).

    /usr/bin/python3 -m pip install --target /tmp/safetensors_pkg safetensors
    PYTHONPATH=/tmp/safetensors_pkg /usr/bin/python3 tools/ref/write_hf_fixtures.py

The safetensors files are written by the real `safetensors` library (safetensors.torch.save_file,
metadata {"format": "pt"}, as transformers' save_pretrained does).

Models (hidden 64, 4 heads; weights N(0, 0.1) drawn from one seeded torch.Generator in
hf_models.expected_names order, norm weights 1 + N(0, 0.1), routers N(0, 0.5); then rounded to
torch_dtype):

  llama      LlamaForCausalLM     bf16  L2 NKV2 HD16 F96  V320 untied, rope_scaling llama3
                                        (factor 8, low 1, high 4, original 32: at HD16 / theta 1e4
                                        the 8 frequencies fall in all three bands)
  qwen2      Qwen2ForCausalLM     fp16  L2 NKV2 HD16 F96  V300 tied, q/k/v bias
  qwen3      Qwen3ForCausalLM     fp32  L2 NKV1 HD24 F32  V300 tied, q_norm / k_norm (NH*HD = 96 != 64)
  mixtral    MixtralForCausalLM   bf16  L2 NKV2 HD16 E4 k2 F32  V300 untied
  qwen3_moe  Qwen3MoeForCausalLM  bf16  L3 NKV2 HD16 E4 k2 Fm16, dense layer 1 (mlp_only_layers [1],
                                        F48), norm_topk_prob false, V300 untied

hf_logits.bin, per model <name>: `<name>.tokens` i32 (16) uniform in [0, vocab_size) and
`<name>.logits` f32 (16, vocab_size), position t = row t; for the MoE models also
`<name>.topk.<layer>` i32 (16, k), the experts chosen per token by descending probability.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_models  # noqa: E402
from fixture import read_fixture, write_fixture  # noqa: E402

try:
    from safetensors.torch import save_file
except ImportError:
    sys.exit("needs Hugging Face's safetensors: /usr/bin/python3 -m pip install --target /tmp/safetensors_pkg "
             "safetensors, then PYTHONPATH=/tmp/safetensors_pkg")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "hf")
T = 16
MIN_MARGIN = 2e-3
TRANSFORMERS_VERSION = "4.51.3"
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}

# ------------------------------------------------------------------------------------------------
# Tokenizer: a byte-level BPE trained here on a fixed text, written as tokenizers 0.21 writes
# GPT-2-style tokenizer.json (pre_tokenizer ByteLevel with its regex, decoder ByteLevel,
# post_processor ByteLevel, merges as "left right" strings).

BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
NUM_MERGES = 30
TEXT = ("the quick brown fox jumps over the lazy dog. the dog sleeps; the fox runs. "
        "foundry trains foundation models: the model reads the tokens, the tokens make the text, "
        "and the text is the data. there is the theory and there is the thing. 1234 + 5678 = 6912\n") * 3


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (tokenizers pre_tokenizers/byte_level.rs)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def train_bpe(text, num_merges):
    """Plain BPE over words (a space attaches to the following word, as GPT-2's regex does for
    letters); most frequent pair first, ties by the pair's strings. -> (vocab dict, merges)."""
    import re
    b2u = bytes_to_unicode()
    words = {}
    for w in re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", text):
        key = tuple(b2u[b] for b in w.encode("utf-8"))
        words[key] = words.get(key, 0) + 1
    vocab = {b2u[b]: b for b in range(256)}           # ids 0..255: the bytes in byte order
    merges = []
    for _ in range(num_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return vocab, merges


def tokenizer_files():
    vocab, merges = train_bpe(TEXT, NUM_MERGES)
    bos_id, eos_id = len(vocab), len(vocab) + 1

    def added(i, content):
        return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True}

    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(bos_id, BOS), added(eos_id, EOS)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    tok_cfg = {
        "added_tokens_decoder": {str(bos_id): {k: v for k, v in added(bos_id, BOS).items() if k != "id"},
                                 str(eos_id): {k: v for k, v in added(eos_id, EOS).items() if k != "id"}},
        "bos_token": BOS,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS,
        "extra_special_tokens": {},
        "model_max_length": 1024,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    return tok, tok_cfg, bos_id, eos_id


# ------------------------------------------------------------------------------------------------
# Configs, as Transformers 4.51's PretrainedConfig.to_json_string writes them for each class
# (keys sorted, model-specific defaults included).

def common(arch, mt, dtype, V, L, NKV, F, bos, eos, tied, theta, max_pos, eps):
    return {"architectures": [arch], "model_type": mt, "torch_dtype": dtype, "vocab_size": V, "hidden_size": 64,
            "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": 4, "num_key_value_heads": NKV,
            "hidden_act": "silu", "max_position_embeddings": max_pos, "initializer_range": 0.02,
            "rms_norm_eps": eps, "use_cache": True, "rope_theta": theta, "rope_scaling": None,
            "attention_dropout": 0.0, "tie_word_embeddings": tied, "bos_token_id": bos, "eos_token_id": eos,
            "transformers_version": TRANSFORMERS_VERSION}


def configs(bos, eos):
    llama = common("LlamaForCausalLM", "llama", "bfloat16", 320, 2, 2, 96, bos, eos, False, 10000.0, 256, 1e-5)
    llama.update(head_dim=16, attention_bias=False, mlp_bias=False, pretraining_tp=1,
                 rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 32, "rope_type": "llama3"})
    qwen2 = common("Qwen2ForCausalLM", "qwen2", "float16", 300, 2, 2, 96, bos, eos, True, 1000000.0, 512, 1e-6)
    qwen2.update(use_sliding_window=False, sliding_window=None, max_window_layers=2)
    qwen3 = common("Qwen3ForCausalLM", "qwen3", "float32", 300, 2, 1, 32, bos, eos, True, 1000000.0, 512, 1e-6)
    qwen3.update(head_dim=24, attention_bias=False, use_sliding_window=False, sliding_window=None,
                 max_window_layers=2)
    mixtral = common("MixtralForCausalLM", "mixtral", "bfloat16", 300, 2, 2, 32, bos, eos, False, 1000000.0, 512,
                     1e-5)
    mixtral.update(head_dim=16, num_local_experts=4, num_experts_per_tok=2, output_router_logits=False,
                   router_aux_loss_coef=0.02, router_jitter_noise=0.0, sliding_window=None)
    qwen3_moe = common("Qwen3MoeForCausalLM", "qwen3_moe", "bfloat16", 300, 3, 2, 48, bos, eos, False, 1000000.0,
                       512, 1e-6)
    qwen3_moe.update(head_dim=16, attention_bias=False, num_experts=4, num_experts_per_tok=2,
                     moe_intermediate_size=16, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[1],
                     output_router_logits=False, router_aux_loss_coef=0.001, use_sliding_window=False,
                     sliding_window=None, max_window_layers=3)
    out = {"llama": llama, "qwen2": qwen2, "qwen3": qwen3, "mixtral": mixtral, "qwen3_moe": qwen3_moe}
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def init_weights(cfg, gen):
    """float32 draws in expected_names order, then rounded to torch_dtype."""
    dt = DTYPES[cfg["torch_dtype"]]
    sd = {}
    for n, s in hf_models.expected_shapes(cfg).items():
        if n.endswith("norm.weight"):
            w = 1.0 + 0.1 * torch.randn(s, generator=gen)
        elif n.endswith(".gate.weight"):
            w = 0.5 * torch.randn(s, generator=gen)
        else:
            w = 0.1 * torch.randn(s, generator=gen)
        sd[n] = w.to(dt).contiguous()
    return sd


def write_model_dir(path, cfg, sd, tok, tok_cfg):
    os.makedirs(path, exist_ok=True)
    for fn in os.listdir(path):
        os.remove(os.path.join(path, fn))
    with open(os.path.join(path, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    # Two shards, in state dict order, cut after the first half of the bytes (as max_shard_size does).
    names = list(sd)
    total = sum(t.numel() * t.element_size() for t in sd.values())
    shard1, acc = [], 0
    for n in names:
        if acc >= total // 2:
            break
        shard1.append(n)
        acc += sd[n].numel() * sd[n].element_size()
    shards = {"model-00001-of-00002.safetensors": shard1,
              "model-00002-of-00002.safetensors": [n for n in names if n not in shard1]}
    weight_map = {}
    for fn, ns in shards.items():
        save_file({n: sd[n] for n in ns}, os.path.join(path, fn), metadata={"format": "pt"})
        weight_map.update({n: fn for n in ns})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(tok, indent=2, ensure_ascii=False) + "\n")
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        f.write(json.dumps(tok_cfg, indent=2) + "\n")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(20261126)
    tok, tok_cfg, bos, eos = tokenizer_files()
    print(f"tokenizer: {len(tok['model']['vocab'])} BPE tokens ({NUM_MERGES} merges) + 2 special = {eos + 1} ids")
    fixtures = {}
    for name, cfg in configs(bos, eos).items():
        assert eos < cfg["vocab_size"]
        sd = init_weights(cfg, gen)
        path = os.path.join(OUT, name)
        write_model_dir(path, cfg, sd, tok, tok_cfg)
        # Reload what was written (own reader) and run the reference on exactly those weights.
        cfg2, sd2, _ = hf_models.load_hf_dir(path)
        assert cfg2 == cfg and list(sorted(sd2)) == list(sorted(sd))
        for n in sd:
            assert sd2[n].dtype == sd[n].dtype and torch.equal(sd2[n], sd[n]), n
        # Tokens: redrawn until every routing decision has a margin (k-th minus (k+1)-th expert
        # probability) of at least MIN_MARGIN, so a float32 / bf16 implementation routes the same.
        for _ in range(1000):
            ids = torch.randint(0, cfg["vocab_size"], (T,), generator=gen)
            logits, topk = hf_models.forward(cfg2, sd2, ids, return_topk=True)
            k = cfg.get("num_experts_per_tok", 0)
            gap = min([float((p_.sort(-1, descending=True).values[:, k - 1] -
                              p_.sort(-1, descending=True).values[:, k]).min()) for _, p_ in topk.values()],
                      default=float("inf"))
            if gap >= MIN_MARGIN:
                break
        else:
            sys.exit(f"{name}: no token draw with routing margin >= {MIN_MARGIN}")
        fixtures[f"{name}.tokens"] = ids.to(torch.int32)
        fixtures[f"{name}.logits"] = logits.to(torch.float32)
        for layer, (idx, _) in topk.items():
            fixtures[f"{name}.topk.{layer}"] = idx.to(torch.int32)
        margin = f", routing margin {gap:.2e}" if topk else ""
        size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
        srt = logits.sort(dim=-1, descending=True).values
        print(f"{name:10s} {cfg['torch_dtype']:9s} {len(sd):3d} tensors, {size / 1000:.0f} kB; logits {tuple(logits.shape)} "
              f"std {float(logits.std()):.3f} max |.| {float(logits.abs().max()):.3f}, "
              f"top1-top2 gap min {float((srt[:, 0] - srt[:, 1]).min()):.2e}{margin}")
    path = os.path.join(ROOT, "tests", "fixtures", "hf_logits.bin")
    write_fixture(path, fixtures)
    back = read_fixture(path)
    assert list(back) == list(fixtures) and all(torch.equal(back[k], v) for k, v in fixtures.items())
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(fixtures)} tensors)")


if __name__ == "__main__":
    main()
