"""End-to-end images/s, old pipeline against new, side by side in one run on the same image files.

Each configuration is a model folder, an artifact variant and a decode: the baseline is the model and policy
released when issue 14 was taken (gamma-starter 0.2.1: one stage, every view) decoded at full size as the
worker did then; the others are the shipped model (staged policy) with the worker's DCT-reduced decode. The
configurations run in turn, round after round, so drifting load hits them alike; each figure is the median.

    git archive 17be2e8 models/default | tar -x -C /tmp/gamma-0.2.1    # the baseline model, from history
    python3 bench/end_to_end.py --baseline /tmp/gamma-0.2.1/models/default --images 48 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from gamma_detect.export.bench import PIPELINE_BATCH, bench_files, cpu_model, simd_flags, time_pipeline
from gamma_detect.runtime.detector import default_model_path, load_detector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the 0.2.1 model folder (see above)")
    parser.add_argument("--model", type=Path, default=None, help="the new model folder (default: models/default)")
    parser.add_argument("--images", type=int, default=48, help="starter image files scored by every configuration")
    parser.add_argument("--folder", type=Path, default=None, help="image folder (default: work/starter/images)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("bench/end-to-end.json"))
    args = parser.parse_args(argv)
    new = args.model or default_model_path()
    configs = [("baseline: 0.2.1 fp32, one stage, full decode", args.baseline, "fp32", False),
               ("0.3.0 fp32, staged, reduced decode", new, "fp32", True),
               ("0.3.0 int8, staged, reduced decode", new, "int8", True)]
    files = bench_files(args.images, args.folder)
    detectors = {label: load_detector(path, variant=variant, threads=args.threads) for label, path, variant, _ in configs}
    seconds: dict[str, list[float]] = {label: [] for label, *_ in configs}
    views: dict[str, float] = {}
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for _ in range(args.rounds):
        for label, _, _, reduced in configs:
            s, v = time_pipeline(detectors[label], files, PIPELINE_BATCH, 1, args.threads, reduced)
            seconds[label].append(s)
            views[label] = v
    cpu_share = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start) / (os.cpu_count() or 1)
    base = len(files) / statistics.median(seconds[configs[0][0]])
    rows = []
    for label, path, variant, reduced in configs:
        per_s = len(files) / statistics.median(seconds[label])
        rows.append({"config": label, "model": str(path), "variant": variant, "reduced_decode": reduced,
                     "images_per_s": per_s, "images_per_s_per_core": per_s / args.threads,
                     "views_per_image": views[label], "speedup": per_s / base, "seconds": seconds[label]})
    report = {"command": " ".join([sys.executable, *sys.argv]), "cpu": cpu_model(), "simd": simd_flags(),
              "logical_cpus": os.cpu_count(), "threads": args.threads, "images": len(files), "rounds": args.rounds,
              "load_average_end": os.getloadavg(), "this_process_cpu_share": cpu_share, "rows": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['command']}\ncpu: {report['cpu']} ({os.cpu_count()} logical), simd: {' '.join(report['simd'])}; "
          f"{len(files)} images, {args.rounds} rounds, load average at the end {report['load_average_end'][0]:.2f}, "
          f"this process {100 * cpu_share:.0f}% of all cores")
    print("| configuration | images/s | per core | views / image | vs baseline |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['images_per_s']:.2f} | {r['images_per_s_per_core']:.2f} | "
              f"{r['views_per_image']:.2f} | {r['speedup']:.2f}x |")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
