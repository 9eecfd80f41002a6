"""Real-PySceneDetect fixture for foundry's shot detection (src/foundry/video/content_detector.h).

Generates deterministic synthetic BGR24 frame sequences in numpy (hard cuts, flashes, fades, noise,
a moving square), feeds them frame by frame to scenedetect's ContentDetector and AdaptiveDetector
through `process_frame` with a StatsManager (no VideoStream, so no auto-downscale happens: the
detectors see exactly these frames), and writes tests/fixtures/scenedetect.bin (format FDRYFIX1,
tools/ref/fixture.py; written here with numpy because this venv has no torch):

  hsv_bgr i32 (N, 3), hsv_hsv i32 (N, 3)        sampled colours and cv2.cvtColor(BGR2HSV) of them
  seq.<name>.frames   i32 (T, H*W*3/4)          the frames' bytes, 4 per i32 (little-endian)
  seq.<name>.shape    i64 (3,)                  T, H, W
  seq.<name>.<metric> i64 (T,)                  float64 bits of each frame's StatsManager value
                                                (content_val, delta_hue, delta_sat, delta_lum,
                                                delta_edges, adaptive_ratio; NaN where none)
  seq.<name>.cuts.<mode> i64 (K,)               cut frames, one list per detector setting (MODES)

Also checks, before writing, that cv2.cvtColor(BGR2HSV) equals the integer formula
(hsv_shift 12, sdiv/hdiv tables, video.md e.1) on all 2^24 colours.

Run with a venv made for it (versions in tools/ref/README.md):
    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/sd_venv
    /tmp/sd_venv/bin/pip install scenedetect opencv-python-headless numpy
    /tmp/sd_venv/bin/python tools/ref/write_scenedetect_fixture.py
"""

import math
import os
import struct

import cv2
import numpy as np
import scenedetect
from scenedetect import FrameTimecode, StatsManager
from scenedetect.detector import FlashFilter
from scenedetect.detectors import AdaptiveDetector, ContentDetector

H, W = 30, 40
FPS = 25.0

# mode name -> detector factory (kept in sync with MODES in tests/video/content_detector_test.cpp)
MODES = {
    "content": lambda: ContentDetector(),
    "content_luma": lambda: ContentDetector(luma_only=True),
    "content_t12": lambda: ContentDetector(threshold=12.0),
    "content_t12_suppress": lambda: ContentDetector(threshold=12.0, filter_mode=FlashFilter.Mode.SUPPRESS),
    "content_t12_len5": lambda: ContentDetector(threshold=12.0, min_scene_len=5),
    "content_t12_len0": lambda: ContentDetector(threshold=12.0, min_scene_len=0),
    "content_edges": lambda: ContentDetector(weights=ContentDetector.Components(1.0, 1.0, 1.0, 1.0)),
    "content_edges_only_k3": lambda: ContentDetector(
        threshold=40.0, weights=ContentDetector.Components(0.0, 0.0, 0.0, 1.0), kernel_size=3),
    "adaptive": lambda: AdaptiveDetector(),
    "adaptive_luma": lambda: AdaptiveDetector(luma_only=True),
    "adaptive_w1_len5": lambda: AdaptiveDetector(window_width=1, min_scene_len=5, min_content_val=8.0),
}


# ---- OpenCV's 8-bit BGR2HSV, transcribed (imgproc/src/color_hsv.simd.hpp, RGB2HSV_b) -------------
def cv_round(x):
    return int(math.floor(x + 0.5))  # cvRound: round half to even on exact ties; none occur here


def hsv_tables():
    shift = 12
    sdiv = np.zeros(256, np.int64)
    hdiv = np.zeros(256, np.int64)
    for i in range(1, 256):
        sdiv[i] = round((255 << shift) / i)
        hdiv[i] = round((180 << shift) / (6.0 * i))
    return sdiv, hdiv


def bgr_to_hsv_formula(bgr):
    """bgr: (..., 3) uint8 -> (..., 3) int64 (H in [0,180), S, V)."""
    sdiv, hdiv = hsv_tables()
    b = bgr[..., 0].astype(np.int64)
    g = bgr[..., 1].astype(np.int64)
    r = bgr[..., 2].astype(np.int64)
    v = np.maximum(np.maximum(b, g), r)
    vmin = np.minimum(np.minimum(b, g), r)
    diff = v - vmin
    s = (diff * sdiv[v] + 2048) >> 12
    h = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * hdiv[diff] + 2048) >> 12
    h = np.where(h < 0, h + 180, h)
    return np.stack([h, s, v], axis=-1)


def check_hsv_all_colours():
    allc = np.arange(1 << 24, dtype=np.uint32)
    img = np.stack([(allc >> 16) & 255, (allc >> 8) & 255, allc & 255], axis=-1).astype(np.uint8)
    img = img.reshape(4096, 4096, 3)
    for r0 in range(0, 4096, 512):
        part = img[r0:r0 + 512]
        ref = cv2.cvtColor(part, cv2.COLOR_BGR2HSV).astype(np.int64)
        mine = bgr_to_hsv_formula(part)
        bad = np.argwhere(np.any(ref != mine, axis=-1))
        assert len(bad) == 0, f"HSV mismatch at {part[tuple(bad[0])]}: cv2 {ref[tuple(bad[0])]} formula {mine[tuple(bad[0])]}"
    print("HSV formula == cv2.cvtColor(BGR2HSV) on all 2^24 colours")


def hsv_samples():
    rng = np.random.RandomState(1234)
    special = []
    for v in (0, 1, 2, 127, 128, 254, 255):
        special += [(v, v, v), (v, 0, 0), (0, v, 0), (0, 0, v), (v, v, 0), (0, v, v), (v, 0, v)]
    special += [(255, 254, 253), (1, 2, 3), (3, 2, 1), (0, 1, 255), (255, 1, 0), (200, 100, 201), (10, 250, 251)]
    bgr = np.concatenate([np.array(special, np.uint8), rng.randint(0, 256, size=(4096, 3)).astype(np.uint8)])
    hsv = cv2.cvtColor(bgr.reshape(1, -1, 3), cv2.COLOR_BGR2HSV).reshape(-1, 3)
    return bgr.astype(np.int32), hsv.astype(np.int32)


# ---- synthetic sequences ---------------------------------------------------------------------
def textured(colour, seed, amp=24):
    """A colour field with a deterministic gradient + pattern texture (so H, S, V all vary)."""
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.RandomState(seed)
    pat = rng.randint(-amp, amp + 1, size=(H, W, 3))
    grad = ((xx[..., None] * np.array([1, 2, 3]) + yy[..., None] * np.array([3, 1, 2])) % 17) - 8
    return np.clip(np.array(colour)[None, None, :] + pat + grad, 0, 255).astype(np.int64)


def jitter(img, rng, amp=3):
    return np.clip(img + rng.randint(-amp, amp + 1, size=img.shape), 0, 255).astype(np.uint8)


def seq_cuts():
    rng = np.random.RandomState(1)
    bounds = [0, 20, 45, 52, 80, 100]  # hard cuts at 20, 45, 52 (a 7-frame scene), 80
    colours = [(200, 40, 30), (30, 180, 60), (20, 30, 220), (150, 150, 20), (90, 60, 140)]
    frames = []
    for k in range(len(colours)):
        base = textured(colours[k], 10 + k)
        for _ in range(bounds[k], bounds[k + 1]):
            frames.append(jitter(base, rng))
    return np.stack(frames)


def seq_flash():
    rng = np.random.RandomState(2)
    base = textured((60, 120, 170), 20, amp=30)
    other = textured((170, 60, 40), 21, amp=30)
    frames = []
    for t in range(100):
        img = (base if t < 85 else other).copy()
        x0 = 2 + (t * 3) % (W - 12)  # a moving square
        y0 = 4 + (t // 7) % (H - 12)
        img[y0:y0 + 10, x0:x0 + 10] = (250, 250, 250) if t < 85 else (0, 0, 0)
        if t in (30, 60, 61):  # 1- and 2-frame flashes
            img = img + 140
        frames.append(jitter(np.clip(img, 0, 255), rng))
    return np.stack(frames)


def seq_fade():
    rng = np.random.RandomState(3)
    a = textured((40, 160, 200), 30).astype(np.float64)
    b = textured((180, 90, 50), 31).astype(np.float64)
    c = textured((90, 200, 120), 32).astype(np.float64)
    frames = []
    for t in range(120):
        if t < 40:
            img = a
        elif t < 70:  # fade out over 30 frames
            img = a * (1.0 - (t - 39) / 30.0)
        elif t < 75:
            img = a * 0.0
        elif t < 95:  # fade in over 20 frames
            img = b * ((t - 74) / 20.0)
        elif t < 100:
            img = b
        else:  # hard cut at 100
            img = c
        frames.append(jitter(np.floor(img).astype(np.int64), rng, amp=2))
    return np.stack(frames)


def seq_noise():
    rng = np.random.RandomState(4)
    base = textured((128, 128, 128), 40, amp=40)
    frames = []
    for t in range(110):
        if t < 40:
            frames.append(jitter(base, rng, amp=20))
        elif t < 90:  # every frame uniform noise
            frames.append(rng.randint(0, 256, size=(H, W, 3)).astype(np.uint8))
        else:
            frames.append(jitter(textured((30, 60, 90), 41), rng, amp=4))
    return np.stack(frames)


SEQUENCES = {"cuts": seq_cuts, "flash": seq_flash, "fade": seq_fade, "noise": seq_noise}
METRICS = ["content_val", "delta_hue", "delta_sat", "delta_lum", "delta_edges"]


def run_detector(make, frames):
    det = make()
    sm = StatsManager()
    det.stats_manager = sm
    cuts, tcs = [], []
    for i in range(len(frames)):
        tc = FrameTimecode(i, fps=FPS)
        tcs.append(tc)
        cuts += [c.frame_num for c in det.process_frame(tc, frames[i])]
    cuts += [c.frame_num for c in det.post_process(tcs[-1])]
    return cuts, sm, tcs, det


def f64_bits(values):
    return np.array(values, dtype="<f8").view("<i8")


def write_fixture(path, tensors):
    codes = {np.dtype("<f4"): 0, np.dtype("<i4"): 1, np.dtype("<i8"): 2}
    out = bytearray(b"FDRYFIX1") + struct.pack("<I", len(tensors))
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        nb = name.encode("utf-8")
        out += struct.pack("<I", len(nb)) + nb + struct.pack("<BI", codes[a.dtype], a.ndim)
        out += struct.pack(f"<{a.ndim}q", *a.shape) + a.tobytes(order="C")
    with open(path + ".tmp", "wb") as f:
        f.write(out)
    os.replace(path + ".tmp", path)


def main():
    print(f"scenedetect {scenedetect.__version__}, opencv {cv2.__version__}, numpy {np.__version__}")
    check_hsv_all_colours()
    tensors = {}
    bgr, hsv = hsv_samples()
    tensors["hsv_bgr"], tensors["hsv_hsv"] = bgr, hsv
    for name, make_frames in SEQUENCES.items():
        frames = make_frames()
        assert frames.dtype == np.uint8 and frames.shape[1:] == (H, W, 3)
        T = len(frames)
        tensors[f"seq.{name}.shape"] = np.array([T, H, W], "<i8")
        tensors[f"seq.{name}.frames"] = frames.reshape(T, -1).view("<i4")
        for mode, make in MODES.items():
            cuts, sm, tcs, det = run_detector(make, frames)
            tensors[f"seq.{name}.cuts.{mode}"] = np.array(cuts, "<i8")
            print(f"  {name:6s} {mode:22s} cuts {cuts}")
            if mode == "content":
                for m in METRICS:
                    vals = [sm.get_metrics(tc, [m])[0] for tc in tcs]
                    tensors[f"seq.{name}.{m}"] = f64_bits([math.nan if v is None else v for v in vals])
            if mode == "adaptive":
                key = det._adaptive_ratio_key
                vals = [sm.get_metrics(tc, [key])[0] for tc in tcs]
                tensors[f"seq.{name}.adaptive_ratio"] = f64_bits([math.nan if v is None else v for v in vals])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "tests", "fixtures", "scenedetect.bin")
    write_fixture(path, tensors)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
