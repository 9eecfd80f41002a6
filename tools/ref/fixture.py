"""Writer (and reader, for checking) of foundry's binary test fixtures, format FDRYFIX1.
The format is documented in tests/fixtures/README.md; the C++ reader is tests/fixture.h.

    magic   8 bytes  b"FDRYFIX1"
    count   u32      number of tensors
    count times:
      name_len u32, name (UTF-8, name_len bytes),
      dtype    u8    0 = f32, 1 = i32, 2 = i64,
      ndim     u32,  dims i64[ndim],
      data     prod(dims) * sizeof(dtype) bytes, row-major
All integers and data are little-endian. Names are unique.

Run directly to write tests/fixtures/fixture_selftest.bin (known values checked by
tests/core/fixture_test.cpp):
    /usr/bin/python3 tools/ref/fixture.py
"""

import os
import struct

import numpy as np
import torch

MAGIC = b"FDRYFIX1"
DTYPE_CODES = {torch.float32: 0, torch.int32: 1, torch.int64: 2}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}
ELEMENT_BYTES = {0: 4, 1: 4, 2: 8}
LE_NUMPY = {torch.float32: "<f4", torch.int32: "<i4", torch.int64: "<i8"}  # explicit little-endian


def write_fixture(path: str, tensors: dict) -> None:
    """tensors: name -> torch.Tensor (float32, int32 or int64), written in dict order."""
    out = bytearray(MAGIC)
    out += struct.pack("<I", len(tensors))
    for name, t in tensors.items():
        if t.dtype not in DTYPE_CODES:
            raise ValueError(f"fixture {path}: tensor {name} has unsupported dtype {t.dtype}")
        name_bytes = name.encode("utf-8")
        t = t.detach().contiguous().cpu()
        out += struct.pack("<I", len(name_bytes)) + name_bytes
        out += struct.pack("<BI", DTYPE_CODES[t.dtype], t.dim())
        out += struct.pack(f"<{t.dim()}q", *t.shape)
        out += t.numpy().astype(LE_NUMPY[t.dtype], copy=False).tobytes(order="C")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, path)


def read_fixture(path: str) -> dict:
    """Inverse of write_fixture (used to check written files)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise ValueError(f"fixture {path}: bad magic")
    (count,) = struct.unpack_from("<I", data, 8)
    pos, tensors = 12, {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<I", data, pos)
        pos += 4
        name = data[pos:pos + name_len].decode("utf-8")
        pos += name_len
        code, ndim = struct.unpack_from("<BI", data, pos)
        pos += 5
        dims = struct.unpack_from(f"<{ndim}q", data, pos)
        pos += 8 * ndim
        n = 1
        for d in dims:
            n *= d
        nbytes = n * ELEMENT_BYTES[code]
        if pos + nbytes > len(data):
            raise ValueError(f"fixture {path}: truncated in tensor {name}")
        arr = np.frombuffer(data, dtype=LE_NUMPY[CODE_DTYPES[code]], count=n, offset=pos)
        pos += nbytes
        tensors[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="))).reshape(dims)
    if pos != len(data):
        raise ValueError(f"fixture {path}: {len(data) - pos} trailing bytes")
    return tensors


def selftest_tensors() -> dict:
    """Known values for tests/core/fixture_test.cpp (keep the two in sync)."""
    return {
        # f32 (2, 3): exact binary fractions plus a subnormal-free awkward value.
        "f32_2x3": torch.tensor([[0.0, 1.5, -2.25], [3.0e-3, -1.0e9, 7.0]], dtype=torch.float32),
        # i32 (4): negatives and extremes.
        "i32_4": torch.tensor([-1, 0, 2147483647, -2147483648], dtype=torch.int32),
        # i64 (2, 1, 2): values outside the i32 range.
        "i64_2x1x2": torch.tensor([[[1, -2]], [[1 << 40, -(1 << 62)]]], dtype=torch.int64),
        # 0-d f32 scalar.
        "scalar": torch.tensor(0.25, dtype=torch.float32),
        # Empty (0, 5) f32: a zero dimension and no data bytes.
        "empty_0x5": torch.zeros(0, 5, dtype=torch.float32),
        # A dotted, non-ASCII name (UTF-8 on disk).
        "grad.naïve.weight": torch.tensor([1.0, -1.0], dtype=torch.float32),
    }


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "tests", "fixtures", "fixture_selftest.bin")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tensors = selftest_tensors()
    write_fixture(path, tensors)
    back = read_fixture(path)
    assert list(back) == list(tensors)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t), name
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
