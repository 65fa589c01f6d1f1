"""`python3 bench/decode.py`: decode time per megapixel, full decode against the DCT-reduced decode the worker uses.

For each photo-like test image (JPEG at several sizes, plus WebP and PNG, which have no DCT scaling), in one
run: the server's decode (``gamma_detect.server.decode.decode``) at full size, then the crop policy's resize to
its working size (``CropPolicy.tile``), against the same decode given ``work=CropPolicy.working_size`` (JPEG
DCT-domain downscaling with ``Image.draft``) and the resize of what is left. The remaining resize is also timed
with Pillow's ``reducing_gap`` (box reduction before the filter) beside OpenCV's area resize the policy uses.
Median of ``--repeats`` runs per cell, one thread, milliseconds; ms/MP is per megapixel of the image's own size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time

import numpy as np
from PIL import Image

from gamma_detect.crops import CropPolicy
from gamma_detect.export.bench import cpu_model, simd_flags
from gamma_detect.runtime import default_model_path
from gamma_detect.runtime.manifest import Manifest
from gamma_detect.server.decode import decode

SIZES = ((1200, 900), (2000, 1500), (3000, 2000), (4000, 3000), (6000, 4000))


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields, shapes and sensor-like noise: compresses like a photo, not like flat colour."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 96), max(2, width // 96), 3), dtype=np.uint8)
    base = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    for _ in range(12):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(base, centre, int(rng.integers(20, max(21, width // 6))), [int(c) for c in rng.integers(0, 256, 3)],
                   -1, lineType=cv2.LINE_AA)
    base += rng.normal(0, 5, size=base.shape).astype(np.int16)
    return np.clip(base, 0, 255).astype(np.uint8)


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return buffer.getvalue()


def median_ms(action, repeats: int) -> float:
    action()   # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def measure(data: bytes, policy: CropPolicy, repeats: int) -> dict:
    limit = 10 ** 9
    full, info = decode(data, max_pixels=limit)
    reduced, _ = decode(data, max_pixels=limit, work=policy.working_size)
    native = (info.height, info.width)
    work_h, work_w = policy.working_size(*native)

    def pil_resize(rgb: np.ndarray) -> None:
        Image.fromarray(rgb).resize((work_w, work_h), Image.Resampling.BILINEAR, reducing_gap=2.0)

    megapixels = info.width * info.height / 1e6
    row = {"format": info.format, "size": f"{info.width}x{info.height}", "megapixels": round(megapixels, 2),
           "bytes": len(data), "decoded_full": f"{full.shape[1]}x{full.shape[0]}",
           "decoded_reduced": f"{reduced.shape[1]}x{reduced.shape[0]}", "working": f"{work_w}x{work_h}",
           "full_decode_ms": median_ms(lambda: decode(data, max_pixels=limit), repeats),
           "full_resize_ms": median_ms(lambda: policy.tile(full), repeats),
           "full_pil_reducing_gap_ms": median_ms(lambda: pil_resize(full), repeats),
           "reduced_decode_ms": median_ms(lambda: decode(data, max_pixels=limit, work=policy.working_size), repeats),
           "reduced_resize_ms": median_ms(lambda: policy.tile(reduced, native), repeats)}
    before = row["full_decode_ms"] + row["full_resize_ms"]
    after = row["reduced_decode_ms"] + row["reduced_resize_ms"]
    row.update({k: round(v, 2) for k, v in row.items() if k.endswith("_ms")})
    row.update(full_ms_per_mp=round(before / megapixels, 2), reduced_ms_per_mp=round(after / megapixels, 2),
               speedup=round(before / after, 2))
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 bench/decode.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=None, help="write the report as JSON")
    args = parser.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)   # one decode thread's cost, as each of the worker's decode threads pays it
    policy = Manifest.read(default_model_path()).policy
    simd = simd_flags()
    load_start, cpu_start, wall_start = os.getloadavg(), os.times(), time.perf_counter()
    print(f"command: python3 bench/decode.py {' '.join(argv)}".rstrip())
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; flags: {' '.join(simd)}")
    print(f"load average at start: {', '.join(f'{v:.2f}' for v in load_start)}")
    print(f"crop policy: short side > {policy.work_side} px scored at max({policy.min_scale}, "
          f"{policy.work_side}/short) of native size; median of {args.repeats} runs, 1 thread\n")
    cases = [("JPEG", w, h) for w, h in SIZES] + [("WEBP", 3000, 2000), ("PNG", 3000, 2000)]
    header = (f"{'format':<5} {'size':>10} {'MP':>5} {'decoded to':>10} {'full ms':>8} {'+resize':>8} "
              f"{'ms/MP':>6} | {'reduced ms':>10} {'+resize':>8} {'ms/MP':>6} | {'speedup':>7} | {'PIL gap2':>8}")
    print(header)
    rows = []
    for fmt, width, height in cases:
        row = measure(encoded(photo(width, height), fmt), policy, args.repeats)
        rows.append(row)
        print(f"{row['format']:<5} {row['size']:>10} {row['megapixels']:>5} {row['decoded_reduced']:>10} "
              f"{row['full_decode_ms']:>8.1f} {row['full_resize_ms']:>8.1f} {row['full_ms_per_mp']:>6.1f} | "
              f"{row['reduced_decode_ms']:>10.1f} {row['reduced_resize_ms']:>8.1f} {row['reduced_ms_per_mp']:>6.1f} | "
              f"{row['speedup']:>6.2f}x | {row['full_pil_reducing_gap_ms']:>8.1f}", flush=True)
    wall = time.perf_counter() - wall_start
    cpu = (os.times().user - cpu_start.user) + (os.times().system - cpu_start.system)
    share = cpu / (wall * (os.cpu_count() or 1))
    load_end = os.getloadavg()
    print(f"\nload average at end: {', '.join(f'{v:.2f}' for v in load_end)}; this process's CPU share over the run: "
          f"{100 * share:.0f}% of {os.cpu_count()} cores")
    print("full: decode at the file's size, then the policy's resize to its working size (OpenCV area); reduced: "
          "the JPEG decoded at the largest DCT scale (1/2, 1/4, 1/8) not below the working size, then the rest of "
          "the resize (none when the scale lands on it). PIL gap2: the full-size array resized to the working size "
          "by Pillow with reducing_gap=2.0, for comparison with the +resize column beside 'full ms'.")
    if args.out:
        report = {"command": f"python3 bench/decode.py {' '.join(argv)}".rstrip(),
                  "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "simd": simd},
                  "load_average_start": [round(v, 2) for v in load_start],
                  "load_average_end": [round(v, 2) for v in load_end], "process_cpu_share": round(share, 3),
                  "rows": rows}
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
