"""Megatron-LM's indexed dataset (MMIDIDX) written and read the way Megatron does it.

A numpy-only transcription of IndexedDatasetBuilder, _IndexWriter and _IndexReader from
megatron/core/datasets/indexed_dataset.py (no Megatron import), used to

  * write the committed fixture tests/fixtures/megatron_tiny.{bin,idx} that foundry's reader
    must load (tests/data/indexed_dataset_test.cpp), and
  * read a dataset written by foundry back with Megatron's reader logic (the reverse check).

Usage:
  /usr/bin/python3 tools/ref/write_megatron_idx.py               # writes the fixture
  /usr/bin/python3 tools/ref/write_megatron_idx.py --read PREFIX # Megatron-reads PREFIX.{bin,idx},
                                                                 # checks it, prints a summary
  /usr/bin/python3 tools/ref/write_megatron_idx.py --check-tiny PREFIX
      # PREFIX must hold exactly the fixture's documents (foundry's test
      # IndexedDataset.WriterReproducesMegatronFixture leaves such a file in the test temp dir)
"""

import argparse
import os
import struct
import sys

import numpy

_INDEX_HEADER = b"MMIDIDX\x00\x00"

# DType enum of indexed_dataset.py: code -> numpy type.
DTYPES = {
    1: numpy.uint8,
    2: numpy.int8,
    3: numpy.int16,
    4: numpy.int32,
    5: numpy.int64,
    6: numpy.float64,
    7: numpy.float32,
    8: numpy.uint16,
}
CODES = {v: k for k, v in DTYPES.items()}


def optimal_dtype(cardinality):
    """DType.optimal_dtype: uint16 below 65500 entries, else int32."""
    return numpy.uint16 if cardinality is not None and cardinality < 65500 else numpy.int32


class IndexedDatasetBuilder:
    """IndexedDatasetBuilder (non-multimodal): tokens to .bin as they come, index at finalize."""

    def __init__(self, bin_path, dtype=numpy.int32):
        self.data_file = open(bin_path, "wb")
        self.dtype = dtype
        self.sequence_lengths = []
        self.document_indices = [0]

    def add_item(self, tokens):
        np_array = numpy.array(tokens, dtype=self.dtype)
        self.data_file.write(np_array.tobytes(order="C"))
        self.sequence_lengths.append(np_array.size)

    def add_document(self, tokens, lengths):
        np_array = numpy.array(tokens, dtype=self.dtype)
        self.data_file.write(np_array.tobytes(order="C"))
        self.sequence_lengths.extend(lengths)
        self.document_indices.append(len(self.sequence_lengths))

    def end_document(self):
        self.document_indices.append(len(self.sequence_lengths))

    def finalize(self, idx_path):
        self.data_file.close()
        # _IndexWriter.__enter__ + write
        itemsize = numpy.int64(numpy.dtype(self.dtype).itemsize)
        pointers, ptr = [], numpy.int64(0)
        for length in self.sequence_lengths:
            pointers.append(ptr.item())
            ptr += length * itemsize
        with open(idx_path, "wb") as f:
            f.write(_INDEX_HEADER)
            f.write(struct.pack("<Q", 1))
            f.write(struct.pack("<B", CODES[self.dtype]))
            f.write(struct.pack("<Q", len(self.sequence_lengths)))
            f.write(struct.pack("<Q", len(self.document_indices)))
            f.write(numpy.array(self.sequence_lengths, dtype=numpy.int32).tobytes(order="C"))
            f.write(numpy.array(pointers, dtype=numpy.int64).tobytes(order="C"))
            f.write(numpy.array(self.document_indices, dtype=numpy.int64).tobytes(order="C"))


class IndexedDataset:
    """_IndexReader + IndexedDataset with the mmap bin reader, including Megatron's asserts."""

    def __init__(self, prefix):
        idx_path, bin_path = prefix + ".idx", prefix + ".bin"
        with open(idx_path, "rb") as stream:
            header = stream.read(9)
            assert header == _INDEX_HEADER, f"bad header, cannot read: {idx_path}"
            version = struct.unpack("<Q", stream.read(8))[0]
            assert version == 1, f"bad version, cannot read: {idx_path}"
            code = struct.unpack("<B", stream.read(1))[0]
            self.dtype = DTYPES[code]
            self.sequence_count = struct.unpack("<Q", stream.read(8))[0]
            self.document_count = struct.unpack("<Q", stream.read(8))[0]
            offset = stream.tell()
        buf = memoryview(numpy.memmap(idx_path, mode="r", order="C"))
        self.sequence_lengths = numpy.frombuffer(buf, dtype=numpy.int32, count=self.sequence_count, offset=offset)
        self.sequence_pointers = numpy.frombuffer(
            buf, dtype=numpy.int64, count=self.sequence_count, offset=offset + self.sequence_lengths.nbytes)
        self.document_indices = numpy.frombuffer(
            buf, dtype=numpy.int64, count=self.document_count,
            offset=offset + self.sequence_lengths.nbytes + self.sequence_pointers.nbytes)
        self.bin = numpy.memmap(bin_path, mode="r", order="C")
        assert self.sequence_lengths.shape[0] == self.document_indices[-1]
        assert self.sequence_lengths.shape[0] == self.sequence_count

    def __len__(self):
        return self.sequence_count

    def __getitem__(self, i):
        return numpy.frombuffer(self.bin, dtype=self.dtype, count=int(self.sequence_lengths[i]),
                                offset=int(self.sequence_pointers[i]))


def tiny_documents():
    """The fixture's content: a list of documents, each a list of sequences (token lists).

    uint16 ids above 32767 catch a signed read; document 3 has three sequences (Megatron's
    sentence-split layout) so the document index differs from the sequence count; sequence 5
    is empty (Megatron can write one).
    """
    docs = []
    for d in range(8):
        n = (d * 7) % 11 + 1
        docs.append([[(d * 9973 + j * 4099) % 65500 for j in range(n)]])
    docs[3] = [[1, 2, 3], [65499, 40000], [7]]
    docs[5] = [[]]
    return docs


def write_tiny(prefix):
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=optimal_dtype(65000))
    for doc in tiny_documents():
        flat = [t for seq in doc for t in seq]
        builder.add_document(flat, [len(seq) for seq in doc])
    builder.finalize(prefix + ".idx")


def check_tiny(prefix):
    ds = IndexedDataset(prefix)
    assert ds.dtype == numpy.uint16, ds.dtype
    seqs = [seq for doc in tiny_documents() for seq in doc]
    assert len(ds) == len(seqs), (len(ds), len(seqs))
    for i, seq in enumerate(seqs):
        assert ds[i].tolist() == seq, (i, ds[i].tolist(), seq)
    bounds = [0]
    for doc in tiny_documents():
        bounds.append(bounds[-1] + len(doc))
    assert ds.document_indices.tolist() == bounds, ds.document_indices.tolist()


def summary(prefix):
    ds = IndexedDataset(prefix)
    tokens = int(ds.sequence_lengths.sum())
    size = os.path.getsize(prefix + ".bin")
    assert size == tokens * numpy.dtype(ds.dtype).itemsize, (size, tokens)
    for i in range(len(ds)):
        ds[i]  # every sequence readable
    return (f"{prefix}: {ds.document_count - 1} documents, {len(ds)} sequences, {tokens} tokens, "
            f"{numpy.dtype(ds.dtype).name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--read", metavar="PREFIX")
    ap.add_argument("--check-tiny", metavar="PREFIX")
    args = ap.parse_args()
    if args.read:
        print(summary(args.read))
        return 0
    if args.check_tiny:
        check_tiny(args.check_tiny)
        print(f"{args.check_tiny}: matches the megatron_tiny documents under Megatron's reader")
        return 0
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    prefix = os.path.join(root, "tests", "fixtures", "megatron_tiny")
    write_tiny(prefix)
    check_tiny(prefix)
    print(summary(prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
