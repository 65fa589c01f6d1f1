"""Do the reduced-precision artifacts give the verdicts FP32 gives? Every starter image through the served
pipeline (crop policy, bands, reduced decode) with each variant: the verdict confusion against FP32, and per
photo source the share of photos each variant puts in `ai` and in `likely_ai` or `ai` (the promise's rates).

These images trained the released probe, so the rates are not the promise's measurement (that is the LOSO
protocol's, in the report): the question here is only whether a variant moves images across band edges.

    python3 bench/variant_verdicts.py --variants fp32,int8 --out bench/variant-verdicts.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gamma_detect.images import load_rgb_reduced
from gamma_detect.runtime.detector import load_detector


def score(detector, paths: list[Path], batch: int = 8) -> list[tuple[str, float]]:
    out = []
    for i in tqdm(range(0, len(paths), batch), desc=detector.artifact.variant, unit="batch"):
        decoded = [load_rgb_reduced(p, detector.policy.working_size) for p in paths[i:i + batch]]
        for p in detector.predict([rgb for rgb, _ in decoded], native=[n for _, n in decoded]):
            r = detector.result(p)
            out.append((r["verdict"], r["ai_probability"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: models/default)")
    parser.add_argument("--starter", type=Path, default=Path("work/starter"))
    parser.add_argument("--variants", default="fp32,int8")
    parser.add_argument("--out", type=Path, default=Path("bench/variant-verdicts.json"))
    args = parser.parse_args(argv)
    index = args.starter / "index.csv"
    if not index.exists():
        raise SystemExit(f"{index} not found: build the starter set first (`gamma data starter`)")
    rows = list(csv.DictReader(index.open()))
    paths = [args.starter / r["path"] for r in rows]
    variants = args.variants.split(",")
    scored = {v: score(load_detector(args.model, variant=v, self_check=False), paths) for v in variants}
    reference = scored[variants[0]]
    report = {"command": " ".join([sys.executable, *sys.argv]), "images": len(rows), "variants": {}}
    for v in variants:
        got = scored[v]
        confusion = Counter(f"{r['label']}: {a[0]} -> {b[0]}" for r, a, b in zip(rows, reference, got) if a[0] != b[0])
        by_source: dict[str, list[str]] = defaultdict(list)
        for r, (verdict, _) in zip(rows, got):
            if r["label"] == "real":
                by_source[r["family"]].append(verdict)
        report["variants"][v] = {
            "verdict_agreement": float(np.mean([a[0] == b[0] for a, b in zip(reference, got)])),
            "changed": dict(confusion),
            "mean_abs_probability_diff": float(np.mean([abs(a[1] - b[1]) for a, b in zip(reference, got)])),
            "ai_recall_flag": float(np.mean([g[0] in ("likely_ai", "ai") for r, g in zip(rows, got) if r["label"] == "ai"])),
            "photos_by_source": {s: {"photos": len(vs), "in_ai": vs.count("ai") / len(vs),
                                     "in_likely_ai_or_ai": (vs.count("ai") + vs.count("likely_ai")) / len(vs)}
                                 for s, vs in sorted(by_source.items())}}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(report["command"])
    print("| variant | verdicts as fp32 | changed | mean abs dp | AI in likely_ai+ai | worst source in ai |"
          "\n|---|---|---|---|---|---|")
    for v, r in report["variants"].items():
        worst = max(r["photos_by_source"].items(), key=lambda kv: kv[1]["in_ai"])
        print(f"| {v} | {100 * r['verdict_agreement']:.1f}% | {json.dumps(r['changed'])} | "
              f"{r['mean_abs_probability_diff']:.4f} | {100 * r['ai_recall_flag']:.1f}% | "
              f"{worst[0]} {100 * worst[1]['in_ai']:.1f}% |")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
