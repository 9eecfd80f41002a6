"""Loads a Hugging Face model directory (config.json + sharded or single-file safetensors; Llama,
Qwen2, Qwen3, Mixtral, Qwen3-MoE) with the float64 reference tools/ref/hf_models.py and prints its
logits, or compares it with another directory (e.g. foundry's `convert --to-hf` output against the
fixture it came from). Own safetensors reader: no dependency beyond torch 1.13 and numpy.

    /usr/bin/python3 tools/ref/check_hf_dir.py DIR                         # stats for the fixture tokens
    /usr/bin/python3 tools/ref/check_hf_dir.py DIR --tokens 1 2 3          # explicit token ids
    /usr/bin/python3 tools/ref/check_hf_dir.py DIR --against OTHER_DIR     # tensors + logits + config
    /usr/bin/python3 tools/ref/check_hf_dir.py DIR --fixture               # vs tests/fixtures/hf_logits.bin

Tokens: --tokens, else `<name>.tokens` from tests/fixtures/hf_logits.bin when the directory's name
is a fixture name, else ids 0..15 (mod vocab_size).

--against: per tensor name, whether both hold it with the same dtype, shape and bytes (bit
equality), the config.json keys that differ, the tokenizer files that differ, and max |logits
difference| of the two forwards. --fixture: max |logits - stored logits| (f32 stored). Exit status 1
when a comparison fails: a tensor missing / different, logits differing by more than --atol
(default 0: the float64 forwards of bit-identical weights are identical), or (--fixture) the stored
logits differing by more than 1e-5.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_models  # noqa: E402
from fixture import read_fixture  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "hf_logits.bin")


def default_tokens(path, cfg):
    name = os.path.basename(os.path.normpath(path))
    if os.path.exists(FIXTURE):
        fx = read_fixture(FIXTURE)
        if f"{name}.tokens" in fx and int(fx[f"{name}.tokens"].max()) < cfg["vocab_size"]:
            return fx[f"{name}.tokens"].long(), f"{name}.tokens of hf_logits.bin"
    return torch.arange(16) % cfg["vocab_size"], "0..15"


def describe(path, cfg, sd, where):
    dtypes = {}
    for t in sd.values():
        dtypes[str(t.dtype).replace("torch.", "")] = dtypes.get(str(t.dtype).replace("torch.", ""), 0) + 1
    nparams = sum(t.numel() for t in sd.values())
    print(f"{path}: {cfg.get('architectures')} model_type {cfg['model_type']}, {len(sd)} tensors "
          f"({nparams} params, dtypes {dtypes}) in {len(set(where.values()))} file(s); "
          f"config torch_dtype {cfg.get('torch_dtype')}")


def raw_bits(t):
    """The tensor's bytes as integers (bit equality: -0.0 != 0.0, NaN payloads compared)."""
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.reshape(-1).contiguous().view(ints)


def logit_stats(name, logits):
    top = logits.argmax(-1)
    print(f"{name}: logits {tuple(logits.shape)} mean {float(logits.mean()):+.6f} std {float(logits.std()):.6f} "
          f"max|.| {float(logits.abs().max()):.6f}; argmax {top.tolist()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--tokens", type=int, nargs="+")
    ap.add_argument("--against", metavar="OTHER_DIR")
    ap.add_argument("--fixture", action="store_true", help="compare with tests/fixtures/hf_logits.bin")
    ap.add_argument("--atol", type=float, default=0.0, help="logits tolerance for --against (default 0)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    cfg, sd, where = hf_models.load_hf_dir(args.dir)
    describe(args.dir, cfg, sd, where)
    if args.tokens:
        ids, src = torch.tensor(args.tokens), "--tokens"
    else:
        ids, src = default_tokens(args.dir, cfg)
    print(f"tokens ({src}): {ids.tolist()}")
    logits = hf_models.forward(cfg, sd, ids)
    logit_stats(args.dir, logits)
    ok = True

    if args.fixture:
        name = os.path.basename(os.path.normpath(args.dir))
        fx = read_fixture(FIXTURE)
        if args.tokens or f"{name}.logits" not in fx:
            sys.exit(f"--fixture needs a directory named after a fixture ({sorted(k[:-7] for k in fx if k.endswith('.logits'))}) "
                     "and no --tokens")
        d = float((logits - fx[f"{name}.logits"].double()).abs().max())
        print(f"vs hf_logits.bin {name}.logits: max |diff| {d:.3e}")
        ok &= d <= 1e-5

    if args.against:
        cfg2, sd2, where2 = hf_models.load_hf_dir(args.against)
        describe(args.against, cfg2, sd2, where2)
        keys = sorted(set(cfg) | set(cfg2))
        cdiff = [(k, cfg.get(k, "<absent>"), cfg2.get(k, "<absent>")) for k in keys if cfg.get(k, "<absent>") != cfg2.get(k, "<absent>")]
        print(f"config.json: {len(cdiff)} keys differ" + "".join(f"\n  {k}: {a!r} vs {b!r}" for k, a, b in cdiff))
        n_same, bad = 0, []
        for n in sorted(set(sd) | set(sd2)):
            if n not in sd or n not in sd2:
                bad.append(f"{n}: only in {args.dir if n in sd else args.against}")
                continue
            a, b = sd[n], sd2[n]
            if a.dtype != b.dtype or a.shape != b.shape:
                bad.append(f"{n}: {a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}")
            elif not torch.equal(raw_bits(a), raw_bits(b)):
                d = float((a.double() - b.double()).abs().max())
                bad.append(f"{n}: bytes differ (max |diff| {d:.3e})")
            else:
                n_same += 1
        print(f"tensors: {n_same} bit-identical (name, dtype, shape, bytes), {len(bad)} differ"
              + "".join(f"\n  {b}" for b in bad[:40]) + ("\n  ..." if len(bad) > 40 else ""))
        ok &= not bad
        for fn in ("tokenizer.json", "tokenizer_config.json"):
            pa, pb = os.path.join(args.dir, fn), os.path.join(args.against, fn)
            if os.path.exists(pa) or os.path.exists(pb):
                if not (os.path.exists(pa) and os.path.exists(pb)):
                    print(f"{fn}: only in {args.dir if os.path.exists(pa) else args.against}")
                else:
                    with open(pa, encoding="utf-8") as fa, open(pb, encoding="utf-8") as fb:
                        ja, jb = json.load(fa), json.load(fb)
                    print(f"{fn}: {'same JSON' if ja == jb else 'JSON differs'}"
                          + ("" if ja == jb or fn != "tokenizer.json" else
                             f" (vocab {'same' if ja.get('model', {}).get('vocab') == jb.get('model', {}).get('vocab') else 'differs'}, "
                             f"merges {'same' if [str(m) for m in ja.get('model', {}).get('merges', [])] == [str(m) for m in jb.get('model', {}).get('merges', [])] else 'differ'})"))
        if cfg2["vocab_size"] > int(ids.max()):
            logits2 = hf_models.forward(cfg2, sd2, ids)
            logit_stats(args.against, logits2)
            if logits2.shape == logits.shape:
                d = float((logits - logits2).abs().max())
                print(f"logits: max |diff| {d:.3e} (atol {args.atol})")
                ok &= d <= args.atol
            else:
                print(f"logits: shapes differ {tuple(logits.shape)} vs {tuple(logits2.shape)}")
                ok = False
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
