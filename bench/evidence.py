"""Cost of the provenance evidence reader beside inference, per starter image, on this machine.

    python3 bench/evidence.py [--limit N] [--threads 2]

Per image: the evidence reader on the original bytes with the full-size pixels supplied (as
`gamma predict` calls it), the same without them (it decodes for the watermark check itself, as
the server calls it: the server's decode may draft a JPEG smaller), and
`Detector.predict` on the default model; then the C2PA child process on a file signed here.
Prints median and p99 in ms, the command, CPU model and flags. Also counts starter photos the
watermark decoder flags (must be none; tests/test_evidence_watermark.py asserts it too).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from gamma_detect.export.bench import cpu_flags, cpu_model
from gamma_detect.images import load_rgb
from gamma_detect.runtime import load_detector
from gamma_detect.runtime.evidence import EvidenceConfig, read_evidence

ROOT = Path(__file__).resolve().parents[1]
STARTER = ROOT / "work" / "starter"


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1e3, result


def summary(name: str, ms: list[float]) -> str:
    return f"{name:<44} median {np.median(ms):8.1f} ms   p99 {np.percentile(ms, 99):8.1f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="first N starter images only (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with (STARTER / "index.csv").open() as f:
        rows = list(csv.DictReader(f))
    rows = rows[:args.limit] if args.limit else rows
    config = EvidenceConfig()
    detector = load_detector(threads=args.threads)
    times: dict[str, list[float]] = {"evidence (pixels supplied)": [], "evidence (decodes itself)": [],
                                     "decode (Pillow, full size)": [], "inference (Detector.predict, 1 image)": []}
    flagged, found = [], 0
    for row in rows:
        data = (STARTER / row["path"]).read_bytes()
        ms, rgb = timed(lambda: load_rgb(data))
        times["decode (Pillow, full size)"].append(ms)
        ms, items = timed(lambda: read_evidence(data, config, rgb=rgb))
        times["evidence (pixels supplied)"].append(ms)
        times["evidence (decodes itself)"].append(timed(lambda: read_evidence(data, config))[0])
        times["inference (Detector.predict, 1 image)"].append(timed(lambda: detector.predict([rgb]))[0])
        found += bool(items)
        if row["label"] == "real" and any(e.source == "watermark" for e in items):
            flagged.append(row["path"])

    sys.path.insert(0, str(ROOT / "tests"))
    from evidence_support import created, encode, make_chain, sign, textured
    signed = sign(encode(textured(512, 512), "JPEG", quality=90), "image/jpeg", make_chain("Bench"),
                  [created("trainedAlgorithmicMedia")])
    c2pa_ms = [timed(lambda: read_evidence(signed, config))[0] for _ in range(10)]

    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"cpu: {cpu_model()}, {os.cpu_count()} logical CPUs, threads {args.threads}; "
          f"flags: {' '.join(sorted(cpu_flags() & {'avx2', 'avx512f', 'avx512_vnni', 'fma', 'sse4_2'}))}; "
          f"python {platform.python_version()}")
    print(f"{len(rows)} starter images, {found} with any evidence item")
    for name, ms in times.items():
        print(summary(name, ms))
    print(summary("evidence on a C2PA-signed 512 px JPEG", c2pa_ms))
    real = sum(r["label"] == "real" for r in rows)
    print(f"watermark false positives: {len(flagged)} of {real} starter photos {flagged or ''}")
    if flagged:
        raise SystemExit("the watermark decoder flagged starter photos: raise its bit-error threshold's margin")


if __name__ == "__main__":
    main()
