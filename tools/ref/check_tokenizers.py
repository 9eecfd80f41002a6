"""One-off cross-check of `foundry tokenizer encode` against the reference tiktoken (Rust).

Not part of the build or the tests (tiktoken is no Debian package): run it by hand after
`pip install tiktoken`:

    python3 tools/ref/check_tokenizers.py build/release/foundry ../shared/data/tokenizers [N]

For gpt2, cl100k_base, o200k_base and llama3 it builds tiktoken Encodings from the same rank
files and pat_str, encodes N adversarial texts (random code points from every plane, Unicode
whitespace, combining marks, CJK, emoji, contractions, digit and space runs, and long pieces of up to 12 kB) with
encode_ordinary, and compares with foundry's ids and decode round trip, printing the first
mismatches. With Hugging Face `tokenizers` installed too, it also trains a tokenizer with
`foundry tokenizer train` on those texts and checks that tokenizers.Tokenizer.from_file reads
the tokenizer.json it wrote and encodes the texts to the same ids as foundry. Texts holding code points unassigned in Python's Unicode database are counted
apart: PCRE2 (10.42 in Debian 12: Unicode 14) and tiktoken's Rust regex (a later Unicode) may
class such a character differently (a CJK Extension H ideograph is \\p{L} only from Unicode 15),
so they can split it differently; this check needs Python's unicodedata to be Unicode 14 too.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import unicodedata

import tiktoken
from tiktoken.load import load_tiktoken_bpe

POOL = [" ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\x85", "\xa0", "\u2009", "\u3000", "\u180e", "\ufeff",
        "\u200d", "\u0301", "\u0308", "'s", "'S", "'ll", "'LL", "\u017f", "\u0130", "K", "0", "123", "4567",
        "Hello", " world", "naïve", "日本語", "🚀", "👩\u200d👩\u200d👧", "!!!", "...", "https://x.y/z?q=1",
        "   \n  ", "x" * 40, " " * 30, "9" * 17, "\u00e9", "e\u0301", "ǅ", "ᾼ", "Σσς"]


def compare(name, reference, texts, lines, encode):
    """Counts texts whose foundry ids (JSON lines) differ from encode(text); prints a few."""
    bad = newer = 0
    for text, line in zip(texts, lines):
        ours, ref = json.loads(line), encode(text)
        if ours == ref:
            continue
        if any(unicodedata.category(c) == "Cn" for c in text):
            newer += 1
            continue
        bad += 1
        if bad <= 5:
            print(f"{name}: MISMATCH {text!r}\n  foundry   {ours}\n  reference {ref}")
    print(f"{name}: {len(texts) - bad - newer}/{len(texts)} texts identical to {reference}, {bad} differ, "
          f"{newer} differ only in texts with code points unassigned in Unicode {unicodedata.unidata_version}")
    return bad


def random_text(rng):
    parts = []
    for _ in range(rng.randint(0, 40)):
        r = rng.random()
        if r < 0.5:
            parts.append(rng.choice(POOL))
        elif r < 0.7:
            parts.append(chr(rng.randint(0x20, 0x7E)))
        else:
            cp = rng.randint(0, 0x10FFFF)
            if 0xD800 <= cp <= 0xDFFF:
                cp = 0xFFFD
            parts.append(chr(cp))
    return "".join(parts)


def main():
    foundry, data = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    rng = random.Random(1234)
    texts = [random_text(rng) for _ in range(n)]
    # Long pieces (merged by the heap path above 128 bytes): words without spaces, CJK runs, digits.
    for _ in range(200):
        length = rng.randint(100, 4000)
        alphabet = rng.choice(["ab", "abcdefghijklmnopqrstuvwxyz", "aeiou rst", "日本語中文字", "0123456789", " \n"])
        texts.append("".join(rng.choice(alphabet) for _ in range(length)))
    with open(os.path.join(data, "vectors.json")) as f:
        texts += [v["text"] for vs in json.load(f).values() for v in vs]
    failures = 0
    for name in ["gpt2", "cl100k_base", "o200k_base", "llama3"]:
        with open(os.path.join(data, name + ".meta.json")) as f:
            meta = json.load(f)
        enc = tiktoken.Encoding(name, pat_str=meta["pat_str"],
                                mergeable_ranks=load_tiktoken_bpe(os.path.join(data, name + ".tiktoken")),
                                special_tokens=meta["special_tokens"])
        stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts)
        out = subprocess.run([foundry, "tokenizer", "encode", "--jsonl", "--tokenizer",
                              os.path.join(data, name + ".tiktoken")], input=stdin.encode(), capture_output=True,
                             check=True).stdout.decode().splitlines()
        assert len(out) == len(texts), (len(out), len(texts))
        failures += compare(name, f"tiktoken {tiktoken.__version__}", texts, out, enc.encode_ordinary)
    failures += check_hf_tokenizers(foundry, data, texts)
    sys.exit(1 if failures else 0)


def check_hf_tokenizers(foundry, data, texts):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("Hugging Face tokenizers not installed: tokenizer.json check skipped")
        return 0
    work = tempfile.mkdtemp()
    try:
        corpus = os.path.join(work, "corpus.jsonl")
        with open(corpus, "w") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
        subprocess.run([foundry, "tokenizer", "train", "--input", corpus, "--vocab-size", "3000", "--output",
                        os.path.join(work, "trained")], check=True, capture_output=True)
        path = os.path.join(work, "trained")
        hf = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts)
        out = subprocess.run([foundry, "tokenizer", "encode", "--jsonl", "--tokenizer", path],
                             input=stdin.encode(), capture_output=True, check=True).stdout.decode().splitlines()
        return compare("trained tokenizer.json", "Hugging Face tokenizers", texts, out,
                       lambda t: hf.encode(t, add_special_tokens=False).ids)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
