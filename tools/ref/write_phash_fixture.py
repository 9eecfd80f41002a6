"""pHash reference for foundry's perceptual fingerprint (src/foundry/video/perceptual_hash.h).

The hash is the `imagehash` package's `phash(image, hash_size=8, highfreq_factor=4)`:

    image = image.convert("L").resize((32, 32), Image.ANTIALIAS)
    pixels = numpy.asarray(image)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)   # type II, unnormalised
    low = dct[:8, :8]
    bits = low > numpy.median(low)                                       # row-major, first = MSB

with two stated differences, both implemented identically here and in C++:

  1. Resize: exact area averaging instead of PIL's Lanczos (ANTIALIAS). Output pixel (o, p) of the
     32x32 image is the mean of the source pixels weighted by their overlap with the output cell,
     rounded half up to u8 (PIL's resize also returns u8). In integers: source row y covers
     [32y, 32y+32) and output row o covers [H*o, H*o+H) on a common axis scaled by 32*H, so the
     overlaps wy[o][y] are integers summing to H per output row (the same for columns, W), the
     weighted sum S = sum_y sum_x wy[o][y] wx[p][x] g[y][x] is an exact integer and
     out = floor((2S + H*W) / (2*H*W)). Works for up- and downscaling.
  2. DCT coefficients with |c| < 1e-6 are set to 0. Those coefficients are exactly 0 in exact
     arithmetic (input values are integers 0..255 and |c| is either 0 or far above 1e-6), and what
     a float DCT returns for them is rounding noise (~1e-9); without this, flat regions and flat
     frames (black frames, fades) would hash to noise that depends on the DCT's summation order.
     A flat grey frame hashes to 0x8000000000000000 (only the DC term above the median 0), a black
     frame to 0.

The DCT-II is written out (scipy is not on Debian's python3 here): along an axis of length N=32,
    y[k] = 2 * sum_n x[n] * cos(pi * k * (2n + 1) / (2N)),   scipy.fftpack.dct(type=2, norm=None),
applied along axis 0 and then axis 1; only k < 8 is needed. If scipy is importable, the script
checks its values against scipy.fftpack.dct. The median of the 64 values is numpy.median: the mean
of the two middle ones.

Grayscale for BGR frames (phash64_bgr): PIL's convert("L") of the RGB image, which is
    L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16            (libImaging/Convert.c, L24)
checked here against PIL itself.

Writes tests/fixtures/phash.json:
  cases[]: name, height, width, channels (1 gray, 3 BGR), pixels (row-major u8 bytes as a hex string,
  BGR order for 3 channels), gray (the u8 grey image as hex, 3-channel cases only), resized (the
  32x32 u8 image as hex), dct8x8
  (64 float64, row-major), median, hash (16 hex digits, = imagehash's str() of the same bits),
  and pil_lanczos_hash: the hash with PIL's own resize(32x32, LANCZOS) instead of the area
  resize (imagehash's actual output; informational, not compared by the tests).

Run: /usr/bin/python3 tools/ref/write_phash_fixture.py
"""

import json
import math
import os

import numpy as np
from PIL import Image

N = 32  # imagehash: hash_size 8 * highfreq_factor 4
K = 8
SNAP = 1e-6

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "phash.json")


def overlap_weights(src, dst=N):
    """(dst, src) integer overlaps of source cells [dst*i, dst*i+dst) with output cells [src*o, src*o+src)."""
    w = np.zeros((dst, src), dtype=np.int64)
    for o in range(dst):
        for i in range(src):
            lo = max(dst * i, src * o)
            hi = min(dst * i + dst, src * o + src)
            w[o, i] = max(0, hi - lo)
    assert (w.sum(axis=1) == src).all()
    return w


def resize_area(gray):
    h, w = gray.shape
    wy, wx = overlap_weights(h), overlap_weights(w)
    s = wy @ gray.astype(np.int64) @ wx.T  # (32, 32) exact integers
    area = h * w
    return ((2 * s + area) // (2 * area)).astype(np.uint8)


def dct_matrix():
    k = np.arange(K)[:, None]
    n = np.arange(N)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * N))  # (8, 32)


def dct8x8(pixels32):
    c = dct_matrix()
    coeffs = c @ pixels32.astype(np.float64) @ c.T  # along axis 0, then axis 1
    coeffs[np.abs(coeffs) < SNAP] = 0.0
    return coeffs


def check_against_scipy(pixels32, coeffs):
    try:
        import scipy.fftpack as fp
    except ImportError:
        return
    full = fp.dct(fp.dct(pixels32.astype(np.float64), axis=0), axis=1)[:K, :K]
    full[np.abs(full) < SNAP] = 0.0
    assert np.abs(full - coeffs).max() < 1e-6


def bits_to_hex(bits):
    value = 0
    for b in bits.flatten():
        value = (value << 1) | int(b)
    return "%016x" % value


def phash_of_resized(pixels32):
    coeffs = dct8x8(pixels32)
    check_against_scipy(pixels32, coeffs)
    med = float(np.median(coeffs))
    # The hash must not hinge on rounding: every coefficient is either exactly the median or far from it.
    for c in coeffs.flatten():
        assert c == med or abs(c - med) > 1e-6, (c, med)
    return coeffs, med, bits_to_hex(coeffs > med)


def pil_gray(bgr):
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))


def formula_gray(bgr):
    b, g, r = (bgr[:, :, i].astype(np.int64) for i in range(3))
    return ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16).astype(np.uint8)


def pil_lanczos_hash(gray):
    resample = getattr(Image, "Resampling", Image).LANCZOS
    small = np.asarray(Image.fromarray(gray, "L").resize((N, N), resample))
    c = dct_matrix()
    coeffs = c @ small.astype(np.float64) @ c.T
    return bits_to_hex(coeffs > np.median(coeffs))


def images():
    """Deterministic small images: (name, array) with (H, W) u8 grey or (H, W, 3) u8 BGR."""
    rng = np.random.RandomState(20261126)
    out = []
    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    out.append(("pattern_32x32", np.clip(128 + 60 * np.sin(x / 3.0) + 50 * np.cos(y / 5.0) + 2 * x - y, 0, 255)))
    out.append(("noise_48x64", rng.randint(0, 256, size=(48, 64))))
    y, x = np.mgrid[0:37, 0:45].astype(np.float64)
    blobs = 40 + 180 * np.exp(-((x - 12) ** 2 + (y - 25) ** 2) / 40.0) + 120 * np.exp(-((x - 33) ** 2 + (y - 9) ** 2) / 25.0)
    out.append(("blobs_37x45", np.clip(blobs + rng.randint(-10, 11, size=blobs.shape), 0, 255)))
    out.append(("upscale_17x20", rng.randint(0, 256, size=(17, 20))))
    coarse = rng.randint(0, 256, size=(10, 12)).astype(np.float64)
    smooth = np.kron(coarse, np.ones((5, 5)))  # (50, 60)
    out.append(("blocks_50x60", np.clip(smooth + rng.randint(-20, 21, size=smooth.shape), 0, 255)))
    out.append(("flat_grey_24x24", np.full((24, 24), 128)))
    out.append(("black_16x16", np.zeros((16, 16))))
    y, x = np.mgrid[0:40, 0:50].astype(np.float64)
    out.append(("vertical_ramp_40x50", 30 + 4 * y + 0 * x))
    bgr = np.zeros((30, 40, 3))
    y, x = np.mgrid[0:30, 0:40].astype(np.float64)
    bgr[:, :, 0] = 200 * (x > 20)
    bgr[:, :, 1] = 6 * y
    bgr[:, :, 2] = 128 + 100 * np.sin(x / 4.0 + y / 7.0)
    out.append(("colour_bgr_30x40", np.clip(bgr + rng.randint(-5, 6, size=bgr.shape), 0, 255)))
    out.append(("noise_bgr_21x29", rng.randint(0, 256, size=(21, 29, 3))))
    return [(name, a.astype(np.uint8)) for name, a in out]


def main():
    cases = []
    for name, image in images():
        case = {"name": name, "height": int(image.shape[0]), "width": int(image.shape[1])}
        if image.ndim == 3:
            gray = pil_gray(image)
            assert (gray == formula_gray(image)).all(), name
            case["channels"] = 3
            case["gray"] = gray.tobytes().hex()
        else:
            gray = image
            case["channels"] = 1
        case["pixels"] = image.tobytes().hex()
        resized = resize_area(gray)
        coeffs, med, hexhash = phash_of_resized(resized)
        case["resized"] = resized.tobytes().hex()
        case["dct8x8"] = [float(c) for c in coeffs.flatten()]
        case["median"] = med
        case["hash"] = hexhash
        case["pil_lanczos_hash"] = pil_lanczos_hash(gray)
        diff = bin(int(hexhash, 16) ^ int(case["pil_lanczos_hash"], 16)).count("1")
        print(f"{name:22s} {hexhash}  (PIL Lanczos resize: {case['pil_lanczos_hash']}, {diff} bits apart)")
        cases.append(case)
    assert cases[5]["hash"] == "8000000000000000" and cases[6]["hash"] == "0000000000000000"
    doc = {
        "description": "imagehash phash(hash_size=8, highfreq_factor=4) with an exact area-average 32x32 resize "
                       "rounded half up to u8 and |DCT coefficient| < 1e-6 set to 0; "
                       "written by tools/ref/write_phash_fixture.py",
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
