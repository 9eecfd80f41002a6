"""One-off verification against the real Megatron-Core package (not needed by build or tests).

Checks, with megatron-core's own code:
  1. IndexedDatasetBuilder writes tests/fixtures/megatron_tiny.{bin,idx} byte for byte as
     write_megatron_idx.py does (so the committed fixture is Megatron's format);
  2. IndexedDataset reads a dataset written by foundry (any PREFIX given with --foundry);
  3. helpers_cpp.build_sample_idx equals the naive "concatenate, cut S + 1 windows every S
     tokens" reference that tests/data/gpt_dataset_test.cpp holds foundry's GPTDataset to;
  4. helpers_cpp.build_blending_indices gives the sequence tests/data/blended_dataset_test.cpp
     expects for weights (0.3, 0.7).

Setup (a scratch copy; megatron/core/__init__.py pulls in parallel state that Debian's
torch 1.13 lacks, so it is emptied there, and megatron.core.utils is replaced by a stub with
the one function indexed_dataset.py uses):

  pip download --no-deps megatron-core==0.13.1 -d /tmp/mcore_dl
  mkdir /tmp/mcore && cd /tmp/mcore && python3 -m zipfile -e /tmp/mcore_dl/*.whl .
  : > megatron/core/__init__.py
  PYTHONPATH=/tmp/mcore /usr/bin/python3 tools/ref/check_megatron_core.py --foundry PREFIX
"""

import argparse
import os
import sys
import tempfile
import types

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import write_megatron_idx as ref  # noqa: E402

utils = types.ModuleType("megatron.core.utils")
utils.log_single_rank = lambda logger, level, msg, *a, **k: None
sys.modules["megatron.core.utils"] = utils

from megatron.core.datasets import helpers_cpp  # noqa: E402
from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder  # noqa: E402
import torch  # noqa: E402


def check_fixture(root):
    fixture = os.path.join(root, "tests", "fixtures", "megatron_tiny")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "tiny")
        b = IndexedDatasetBuilder(prefix + ".bin", dtype=numpy.uint16)
        for doc in ref.tiny_documents():
            flat = [t for seq in doc for t in seq]
            b.add_document(torch.tensor(flat, dtype=torch.int64), [len(s) for s in doc])
        b.finalize(prefix + ".idx")
        for ext in (".bin", ".idx"):
            with open(prefix + ext, "rb") as a, open(fixture + ext, "rb") as c:
                assert a.read() == c.read(), f"megatron-core's {ext} differs from the fixture"
    print("1. megatron-core IndexedDatasetBuilder == tests/fixtures/megatron_tiny (bytes)")


def check_foundry_file(prefix):
    ds = IndexedDataset(prefix)
    n = len(ds)
    tokens = sum(len(ds[i]) for i in range(n))
    print(f"2. megatron-core IndexedDataset reads {prefix}: {len(ds.document_indices) - 1} documents, "
          f"{n} sequences, {tokens} tokens, {ds.index.dtype.__name__}")


def check_sample_index():
    rng = numpy.random.RandomState(0)
    cases = 0
    for trial in range(200):
        n_docs = rng.randint(1, 30)
        sizes = rng.randint(0, 20, size=n_docs).astype(numpy.int32)
        if sizes.sum() < 2:
            continue
        seq = int(rng.randint(1, 25))
        epochs = int(rng.randint(1, 4))
        tokens_per_epoch = int(sizes.sum())
        doc_idx = numpy.concatenate([rng.permutation(n_docs) for _ in range(epochs)]).astype(numpy.int32)
        rng.shuffle(doc_idx)
        if seq < 2:  # helpers.cpp asserts seq_length > 1
            continue
        sample_idx = helpers_cpp.build_sample_idx_int64(sizes, doc_idx, seq, epochs, tokens_per_epoch, True, 1)
        flat = numpy.concatenate([numpy.arange(sizes[d]) + 1000 * d for d in doc_idx])
        num = (epochs * tokens_per_epoch - 1) // seq
        assert sample_idx.shape[0] - 1 == num
        for k in range(num):
            (b, bo), (e, eo) = sample_idx[k], sample_idx[k + 1]
            parts = []
            for i in range(b, e + 1):
                d = doc_idx[i]
                lo = bo if i == b else 0
                hi = eo + 1 if i == e else sizes[d]
                parts.append(numpy.arange(lo, hi) + 1000 * d)
            got = numpy.concatenate(parts)
            want = flat[k * seq: k * seq + seq + 1]
            assert (got == want).all(), (trial, k, got, want)
        cases += 1
    print(f"3. megatron-core build_sample_idx == naive concatenate-and-cut on {cases} random cases")


def check_blending():
    weights = numpy.array([0.3, 0.7], dtype=numpy.float64)
    di = numpy.zeros(5, dtype=numpy.int16)
    dsi = numpy.zeros(5, dtype=numpy.int64)
    helpers_cpp.build_blending_indices(di, dsi, weights, 2, 5, False)
    assert di.tolist() == [1, 0, 1, 1, 0] and dsi.tolist() == [0, 0, 1, 2, 1], (di, dsi)
    print("4. megatron-core build_blending_indices(0.3, 0.7) == [1, 0, 1, 1, 0] / [0, 0, 1, 2, 1]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--foundry", metavar="PREFIX", help="a dataset written by foundry")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    check_fixture(root)
    if args.foundry:
        check_foundry_file(args.foundry)
    check_sample_index()
    check_blending()


if __name__ == "__main__":
    main()
