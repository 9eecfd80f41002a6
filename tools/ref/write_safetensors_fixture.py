"""Writes tests/fixtures/reference.safetensors and tests/fixtures/reference_fp8.safetensors with
Hugging Face's own `safetensors` package (the Rust reference writer), read by
tests/checkpoint/safetensors_test.cpp, which checks foundry reads the known values below and
that its writer produces the same bytes from the same tensors.

    /usr/bin/python3 -m pip install --target /tmp/safetensors_pkg safetensors   # one-off
    PYTHONPATH=/tmp/safetensors_pkg /usr/bin/python3 tools/ref/write_safetensors_fixture.py

(written with safetensors 0.8.0 and torch 1.13). Contents:

reference.safetensors (safetensors.torch.save_file, metadata {"format": "pt"}):
    embedding.weight  F32  (3, 4)  arange(12) * 0.25 - 1
    norm.weight       BF16 (5,)    [1, -2, 0.5, 3.140625, -0.0078125]
    half              F16  (2, 2)  [0.5, -1.5, 65504, 2**-14]
    ids               I32  (4,)    [0, -1, 2**31 - 1, -2**31]
    counts            I64  (2,)    [2**40, -3]
    bytes             U8   (3,)    [0, 127, 255]
    small             I8   (2,)    [-128, 127]
    mask              BOOL (3,)    [True, False, True]
    scalar            F32  ()      2.5
    empty             F32  (0, 3)

reference_fp8.safetensors (safetensors.serialize_file on raw buffers; torch 1.13 has no fp8),
no metadata; raw bytes:
    e4m3   F8_E4M3 (4,)  [0x00, 0x38, 0xC0, 0x7E]
    e5m2   F8_E5M2 (2,)  [0x3C, 0xFB]
    e8m0   F8_E8M0 (3,)  [127, 0, 254]
    fp4    F4      (4,)  [0x21, 0xF7]  (two elements per byte)
    w      F32     (2,)  [1.0, -1.0]
"""

import ctypes
import os

import torch
from safetensors import TensorSpec, serialize_file
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "fixtures")


def main():
    tensors = {
        "embedding.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25 - 1,
        "norm.weight": torch.tensor([1, -2, 0.5, 3.140625, -0.0078125], dtype=torch.bfloat16),
        "half": torch.tensor([[0.5, -1.5], [65504, 2.0**-14]], dtype=torch.float16),
        "ids": torch.tensor([0, -1, 2**31 - 1, -(2**31)], dtype=torch.int32),
        "counts": torch.tensor([2**40, -3], dtype=torch.int64),
        "bytes": torch.tensor([0, 127, 255], dtype=torch.uint8),
        "small": torch.tensor([-128, 127], dtype=torch.int8),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    path = os.path.join(OUT, "reference.safetensors")
    save_file(tensors, path, metadata={"format": "pt"})
    back = load_file(path)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k

    raw = [
        ("e4m3", "float8_e4m3fn", [4], bytes([0x00, 0x38, 0xC0, 0x7E])),
        ("e5m2", "float8_e5m2", [2], bytes([0x3C, 0xFB])),
        ("e8m0", "float8_e8m0fnu", [3], bytes([127, 0, 254])),
        ("fp4", "float4_e2m1fn_x2", [2], bytes([0x21, 0xF7])),  # 2 bytes = 4 F4 elements
        ("w", "float32", [2], torch.tensor([1.0, -1.0]).numpy().tobytes()),
    ]
    buffers = [ctypes.create_string_buffer(data, len(data)) for _, _, _, data in raw]
    specs = {
        name: TensorSpec(dtype=dtype, shape=shape, data_ptr=ctypes.addressof(buf), data_len=len(data))
        for (name, dtype, shape, data), buf in zip(raw, buffers)
    }
    serialize_file(specs, os.path.join(OUT, "reference_fp8.safetensors"))
    print("wrote", path, "and reference_fp8.safetensors")


if __name__ == "__main__":
    main()
