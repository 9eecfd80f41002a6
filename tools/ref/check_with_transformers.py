"""Optional, manual: loads a Hugging Face model directory with the REAL Transformers
(AutoConfig, AutoModelForCausalLM, AutoTokenizer) and compares its logits with
tools/ref/hf_models.py. Not part of the build or tests; it checks the reference and the fixtures
(or a directory foundry exported) against the library itself.

Needs Python >= 3.9 with torch >= 2 and transformers 4.51.3 (Qwen3 / Qwen3-MoE need >= 4.51), e.g.
(PyPI's Linux torch wheel pulls its CUDA libraries, ~5 GB; a CPU is enough to run it):

    python3.11 -m venv /tmp/hf_stretch/venv
    /tmp/hf_stretch/venv/bin/pip install torch==2.7.1 transformers==4.51.3 numpy
    /tmp/hf_stretch/venv/bin/python tools/ref/check_with_transformers.py tests/fixtures/hf/*

For each DIR: loading must report no missing / unexpected / mismatched keys; the model is run in
float64 (torch_dtype=torch.float64, eager attention) on the fixture's tokens (hf_logits.bin when
DIR's name is a fixture name, else 0..15) and in its stored dtype (torch_dtype="auto"), and both are
compared with hf_models.forward (float64). HF computes RoPE's cos/sin and the router softmax in
float32 even in a float64 model, so the float64 difference is ~1e-7, not 0. The tokenizer is loaded
with AutoTokenizer and a sample text encoded. The stored-dtype model is also written back
with save_pretrained: its config.json must equal DIR's (keys and values) and its tensors DIR's. Then the exact check: HF's float32 steps (RMSNorm,
RoPE cos/sin, softmax in attention and routers) are patched to float64 and the reference is run with
HF's (float32-computed) inv_freq: the logits must agree to 1e-12, and the llama3 / default
inv_freq of both to float32 rounding (1e-6 relative). Exit status 1 if the float64 logits differ
by more than 1e-5, the exact check fails, any key is missing / unexpected, or save_pretrained
writes a different config.json or tensors.
"""

import json
import os
import sys
import tempfile
import types

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_models  # noqa: E402
from fixture import read_fixture  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "hf_logits.bin")
SAMPLE = "the quick brown fox. 1234 hello<|end_of_text|>"


def check(path):
    name = os.path.basename(os.path.normpath(path))
    cfg, sd, _ = hf_models.load_hf_dir(path)
    fx = read_fixture(FIXTURE) if os.path.exists(FIXTURE) else {}
    ids = fx[f"{name}.tokens"].long() if f"{name}.tokens" in fx else torch.arange(16) % cfg["vocab_size"]
    ref = hf_models.forward(cfg, sd, ids)
    ok = True

    hf_cfg = AutoConfig.from_pretrained(path)
    print(f"{name}: transformers {transformers.__version__} config {type(hf_cfg).__name__}, "
          f"to_dict keys missing from config.json: {sorted(set(hf_cfg.to_diff_dict()) - set(cfg) - {'transformers_version'})}")
    for dtype in (torch.float64, "auto"):
        model, info = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype, attn_implementation="eager",
                                                           output_loading_info=True)
        model.eval()
        bad_keys = {k: v for k, v in info.items() if v}
        with torch.no_grad():
            out = model(ids[None, :]).logits[0].double()
        d = float((out - ref).abs().max())
        print(f"  {type(model).__name__} dtype {model.dtype}: loading info {bad_keys or 'clean'}; "
              f"logits {tuple(out.shape)} max |HF - hf_models| {d:.3e}"
              + (f"; argmax agrees on {int((out.argmax(-1) == ref.argmax(-1)).sum())}/{len(ids)}" if dtype == "auto" else ""))
        ok &= not bad_keys
        if dtype == "auto":  # save_pretrained's own directory: config keys and values, tensors
            with tempfile.TemporaryDirectory() as tmp:
                model.save_pretrained(tmp, max_shard_size="100KB")
                with open(os.path.join(tmp, "config.json")) as f:
                    saved = json.load(f)
                cfg2, sd2, where2 = hf_models.load_hf_dir(tmp)
            diff = {k: (cfg.get(k, "<absent>"), saved.get(k, "<absent>")) for k in set(cfg) | set(saved)
                    if cfg.get(k, "<absent>") != saved.get(k, "<absent>")}
            same = set(sd) == set(sd2) and all(sd[n].dtype == sd2[n].dtype and torch.equal(sd[n], sd2[n]) for n in sd)
            print(f"  save_pretrained: config.json keys/values differing from DIR's: {diff or 'none'}; "
                  f"{len(sd2)} tensors in {len(set(where2.values()))} shards, {'all equal to DIR' if same else 'DIFFER'}")
            ok &= same and set(diff) <= {"transformers_version"}
        if dtype == torch.float64:
            ok &= d <= 1e-5
            if f"{name}.logits" in fx:
                print(f"  max |HF float64 - hf_logits.bin {name}.logits| {float((out - fx[f'{name}.logits'].double()).abs().max()):.3e}")
    if os.path.exists(os.path.join(path, "tokenizer.json")):
        tok = AutoTokenizer.from_pretrained(path)
        enc = tok(SAMPLE, add_special_tokens=False)["input_ids"]
        print(f"  {type(tok).__name__}: {len(tok)} tokens, bos {tok.bos_token_id} eos {tok.eos_token_id}; "
              f"{SAMPLE!r} -> {enc}")
    return ok


# ------------------------------------------------------------------------------------------------
# Exact check: Transformers' float32 islands (RMSNorm's .to(float32), RoPE cos/sin in float32,
# softmax(..., dtype=torch.float32) in eager attention and the MoE routers) switched to float64 by
# patching the loaded modules; then the only difference left is inv_freq, which HF computes in
# float32 at init: the reference is run with HF's inv_freq values (its own llama3 rule is compared
# with them separately, to float32 rounding).

def _patch_float32_islands():
    import transformers.models.llama.modeling_llama as m1
    import transformers.models.mixtral.modeling_mixtral as m2
    import transformers.models.qwen2.modeling_qwen2 as m3
    import transformers.models.qwen3.modeling_qwen3 as m4
    import transformers.models.qwen3_moe.modeling_qwen3_moe as m5
    softmax = torch.nn.functional.softmax

    class Functional:  # torch.nn.functional whose softmax ignores dtype= and keeps float64
        def __getattr__(self, k):
            return getattr(torch.nn.functional, k)

        @staticmethod
        def softmax(x, dim=None, dtype=None):
            return softmax(x.double(), dim=dim)

    for mod in (m1, m2, m3, m4, m5):
        if hasattr(mod, "F"):
            mod.F = Functional()
        mod.nn = types.SimpleNamespace(**{k: getattr(torch.nn, k) for k in dir(torch.nn) if not k.startswith("__")})
        mod.nn.functional = Functional()


def _rms_forward(self, x):
    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


def _rope_forward(self, x, position_ids):
    freqs = (self.inv_freq.double()[None, :, None] @ position_ids[:, None, :].double()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling


def check_exact(path):
    name = os.path.basename(os.path.normpath(path))
    cfg, sd, _ = hf_models.load_hf_dir(path)
    fx = read_fixture(FIXTURE) if os.path.exists(FIXTURE) else {}
    ids = fx[f"{name}.tokens"].long() if f"{name}.tokens" in fx else torch.arange(16) % cfg["vocab_size"]
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float64, attn_implementation="eager").eval()
    inv_hf = None
    for mod in model.modules():
        if type(mod).__name__.endswith("RMSNorm"):
            mod.forward = types.MethodType(_rms_forward, mod)
        if type(mod).__name__.endswith("RotaryEmbedding"):
            mod.forward = types.MethodType(_rope_forward, mod)
            inv_hf = mod.inv_freq.double()
    inv_ref = hf_models.rope_inv_freq(cfg)
    rel = float(((inv_hf - inv_ref) / inv_ref).abs().max())
    saved, hf_models.rope_inv_freq = hf_models.rope_inv_freq, lambda c: inv_hf
    try:
        ref = hf_models.forward(cfg, sd, ids)
    finally:
        hf_models.rope_inv_freq = saved
    with torch.no_grad():
        out = model(ids[None, :]).logits[0]
    d = float((out - ref).abs().max())
    print(f"{name}: inv_freq HF (float32) vs hf_models (float64) max rel diff {rel:.1e}; "
          f"all-float64 HF vs hf_models logits max |diff| {d:.2e}")
    return d <= 1e-12 and rel <= 1e-6


def main():
    torch.set_num_threads(1)
    ok = all([check(p) for p in sys.argv[1:]])
    print("exact check (HF's float32 steps switched to float64):")
    _patch_float32_islands()
    ok &= all([check_exact(p) for p in sys.argv[1:]])
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
