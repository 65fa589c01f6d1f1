"""Crop policies compared on the protocol of record (leave one photo source out, nested bands), with a paired
bootstrap against the one-stage policy of 0.2.1 (every view): per-source false-positive rates, AI recall, views per image.

Each candidate is replayed exactly from the same cached views and the same probe fits (`train/loso.py`): a
staged policy runs the rest of the grid only where the bands, refitted under that policy, put its global view's
score in a refine band. The bootstrap resamples images (the same draw for both policies) within each seed.

    python3 bench/policy_loso.py                      # needs work/starter and the LOSO feature cache
    python3 bench/policy_loso.py --boot 2000 --out bench/policy-loso.json --report models/default
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gamma_detect.contract import VERDICTS
from gamma_detect.crops import CropPolicy
from gamma_detect.train.config import load_preset
from gamma_detect.train.experiment import training_records
from gamma_detect.train.loso import LosoConfig, Probe, load_features, run_seed, summarise
from gamma_detect.train.report import CROP_POLICIES, CROP_POLICY_HEADING, crop_policy_lines, with_crop_policies

STOPS = {"only a stage-0 `real` stops": ("real",), "`real` or `ai` stops": ("real", "ai"),
         "`real` or `likely_real` stops": ("real", "likely_real")}


BASELINE = "one stage, 3x3 grid (0.2.1)"


def candidates(released: CropPolicy) -> dict[str, CropPolicy]:
    """The one-stage baseline (every view), staged policies whose stage 0 is the global view alone, and both with
    a 2x2 grid (the 3x3 grid's corners: the cached views hold them)."""
    one = replace(released, coarse_grid=None, refine_bands=())
    out = {BASELINE: one, "one stage, 2x2 grid": replace(one, max_grid=2)}
    for name, stop in STOPS.items():
        refine = tuple(v for v in VERDICTS if v not in stop)
        out[f"global first, {name}"] = replace(one, coarse_grid=0, refine_bands=refine)
        out[f"global first, 2x2 grid, {name}"] = replace(one, max_grid=2, coarse_grid=0, refine_bands=refine)
    return {f"{name} (released)" if policy == released else name: policy for name, policy in out.items()}


def _rates(rows: list[dict], pick: np.ndarray) -> tuple[float, float]:
    """(worst per-source share of photos in `ai`, share of AI images in `ai`+`likely_ai`) of the picked rows."""
    by_unit: dict[str, list[bool]] = {}
    caught = []
    for i in pick:
        r = rows[i]
        flagged = r["abstained"] is None
        if r["label"]:
            caught.append(flagged and r["band"] != "other")
        else:
            by_unit.setdefault(r["unit"], []).append(flagged and r["band"] == "ai")
    return max(np.mean(v) for v in by_unit.values()), float(np.mean(caught))


def paired_bootstrap(base: dict, other: dict, boot: int, seed: int = 0) -> dict:
    """95% intervals of (other - base) for the worst source's `ai` rate and the AI recall, one seed's runs."""
    rng = np.random.default_rng(seed)
    a, b = base["records"], other["records"]
    n = len(a)
    diffs = []
    for _ in range(boot):
        pick = rng.integers(0, n, n)
        (fa, ra), (fb, rb) = _rates(a, pick), _rates(b, pick)
        diffs.append((fb - fa, rb - ra))
    d = np.array(diffs)
    lo, hi = np.percentile(d, [2.5, 97.5], axis=0)
    return {"worst_ai_rate_diff_ci95": [float(lo[0]), float(hi[0])], "recall_diff_ci95": [float(lo[1]), float(hi[1])]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features-cache", type=Path, default=Path("work/features"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/policy-loso.json"),
                        help=f"the comparison; copy it to RUN/loso/{CROP_POLICIES} and the release's report holds it")
    parser.add_argument("--report", type=Path, default=None,
                        help="a released model folder whose report.md / report.json get the comparison now")
    args = parser.parse_args(argv)
    train_cfg = load_preset("starter")
    records = training_records(train_cfg)
    cfg = LosoConfig()
    probe = Probe(load_features(records, train_cfg.crop, cfg, args.features_cache), np.array([r.label for r in records]))
    seeds = [int(s) for s in args.seeds.split(",")]
    policies = candidates(train_cfg.crop)
    runs = {name: [run_seed(probe, records, cfg, s, policy) for s in tqdm(seeds, desc=name, unit="seed")]
            for name, policy in policies.items()}
    base = runs[BASELINE]
    rows = []
    for name, seed_runs in runs.items():
        summary = summarise(seed_runs, cfg)
        worst = summary["worst"]
        rows.append({"policy": name, "crop_policy": policies[name].to_dict(),
                     "views_per_image": summary["views_per_image"],
                     "worst_photo_ai_rate": worst["max_photo_ai_rate"],
                     "photo_ai_rate_by_source": worst["photo_ai_rate_by_source"],
                     "ai_recall_flag": worst["ai_recall_flag"], "mean_roc_auc": summary["mean_roc_auc"],
                     "paired_bootstrap": [paired_bootstrap(b, r, args.boot, s) for s, b, r in zip(seeds, base, seed_runs)]})
    report = {"command": " ".join([sys.executable, *sys.argv]), "machine": platform.processor() or platform.machine(),
              "recipe": cfg.to_dict(), "seeds": seeds, "bootstrap": args.boot, "rows": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print("\n".join(crop_policy_lines(report)))
    if args.report:
        with_crop_policies(args.report, report)
        print(f"updated: {args.report / 'report.md'} (section {CROP_POLICY_HEADING!r}) and report.json")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
