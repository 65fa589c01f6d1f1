"""Crop policies compared on the same model and images: decisions, views per image, and their cost.

Every distinct view the candidate policies could cut (the union of their grids, the global view) is scored
once; each policy is then replayed exactly as the runtime runs it (stage 0, the refine decision on the
manifest's bands, stage 1), so its probabilities are the ones serving would give.

    python3 bench/policy_compare.py                        # the default model, in-sample, on work/starter
    python3 bench/policy_compare.py --scores runs/x.npz    # replay scores saved by an earlier run

The leave-one-photo-source-out comparison (held-out models, nested bands) calls ``score_union`` with each
fold's model and ``replay`` with that fold's bands; this script alone gives the in-sample picture.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from gamma_detect.crops import CropPlan, CropPolicy
from gamma_detect.verdict import verdict

REFINE = ("likely_real", "uncertain", "likely_ai")
EPS = 1e-7


def candidates(base: CropPolicy) -> dict[str, CropPolicy]:
    """The policies compared: today's one-stage grid, smaller grids, and staged variants (stage-0 grid,
    refine bands, pixel budget). ``+ai``: the `ai` band refines too (only a stage-0 `real` stops early)."""
    out = {"baseline": base, "grid2": replace(base, max_grid=2),
           "grid2@448": replace(base, max_grid=2, work_side=448)}
    for grid in (0, 1, 2):
        out[f"g{grid}"] = replace(base, coarse_grid=grid, refine_bands=REFINE)
        out[f"g{grid}+ai"] = replace(base, coarse_grid=grid, refine_bands=REFINE + ("ai",))
    out["g1+ai grid2"] = replace(base, max_grid=2, coarse_grid=1, refine_bands=REFINE + ("ai",))
    out["g0+budget"] = replace(base, coarse_grid=0, refine_bands=REFINE, work_pixels=224 * 224 * 6)
    return out


def score_union(images: Sequence[np.ndarray], policies: Sequence[CropPolicy],
                run: Callable[[np.ndarray], np.ndarray], batch: int = 32) -> list[dict]:
    """Per image: {"global": p, (working, box): p, ...}, calibrated view probabilities from ``run``. Policies
    whose working size differs (a pixel budget) get their own boxes."""
    views, keys = [], []
    for i, image in enumerate(images):
        owned = []
        for policy in policies:
            tiles = policy.tile(image)
            plan = tiles.plan
            s = policy.input_size
            for y, x in plan.boxes:
                key = (plan.working, (y, x))
                if key not in owned:
                    owned.append(key)
                    views.append(tiles.scaled[y:y + s, x:x + s])
                    keys.append((i, key))
            if "global" not in owned:
                owned.append("global")
                views.append(tiles.views(0)[-1])
                keys.append((i, "global"))
    probabilities = np.concatenate([run(np.ascontiguousarray(np.stack(views[k:k + batch])))
                                    for k in range(0, len(views), batch)])
    out: list[dict] = [{} for _ in images]
    for (i, key), p in zip(keys, probabilities):
        out[i][key] = float(p)
    return out


def combine(probabilities: Sequence[float]) -> float:
    p = np.clip(np.asarray(probabilities, np.float64), EPS, 1 - EPS)
    return float(1 / (1 + np.exp(-np.mean(np.log(p) - np.log1p(-p)))))


def replay(policy: CropPolicy, shape: tuple[int, int], scores: dict, bands: Sequence[dict]) -> tuple[float, int]:
    """The image probability and the views run, exactly as the runtime's staged predict gets them."""
    plan: CropPlan = policy.plan(*shape)
    first = len(plan.boxes[:plan.first])
    stage0 = [scores[(plan.working, b)] for b in plan.boxes[:first]] + [scores["global"]]
    p = combine(stage0)
    if not policy.refines(p, bands):
        return p, len(stage0)
    every = stage0 + [scores[(plan.working, b)] for b in plan.boxes[first:]]
    return combine(every), len(every)


def summarise(labels: np.ndarray, groups: np.ndarray, probs: np.ndarray, views: np.ndarray,
              bands: Sequence[dict]) -> dict:
    names = np.array([verdict(float(p), bands) for p in probs])
    real = labels == 0
    per_source = {g: float(np.mean(names[real & (groups == g)] == "ai")) for g in sorted(set(groups[real]))}
    return {"ai_recall": float(np.mean(np.isin(names[~real], ("ai", "likely_ai")))),
            "photos_in_ai": float(np.mean(names[real] == "ai")), "per_source_ai": per_source,
            "views_per_image": float(views.mean())}


def paired_bootstrap(labels: np.ndarray, a: np.ndarray, b: np.ndarray, bands: Sequence[dict], n: int = 2000,
                     seed: int = 0) -> dict:
    """95% intervals of (b - a) for AI recall (ai + likely_ai) and photos in `ai`, resampling images in pairs."""
    rng = np.random.default_rng(seed)
    va = np.array([verdict(float(p), bands) for p in a])
    vb = np.array([verdict(float(p), bands) for p in b])
    ai, real = np.where(labels == 1)[0], np.where(labels == 0)[0]
    hit_a, hit_b = np.isin(va, ("ai", "likely_ai")), np.isin(vb, ("ai", "likely_ai"))
    fp_a, fp_b = va == "ai", vb == "ai"
    recall, fp = [], []
    for _ in range(n):
        i, j = rng.choice(ai, len(ai)), rng.choice(real, len(real))
        recall.append(hit_b[i].mean() - hit_a[i].mean())
        fp.append(fp_b[j].mean() - fp_a[j].mean())
    return {"recall_delta": float(hit_b[ai].mean() - hit_a[ai].mean()),
            "recall_delta_ci95": [float(np.percentile(recall, 2.5)), float(np.percentile(recall, 97.5))],
            "photos_in_ai_delta": float(fp_b[real].mean() - fp_a[real].mean()),
            "photos_in_ai_delta_ci95": [float(np.percentile(fp, 2.5)), float(np.percentile(fp, 97.5))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--index", default="work/starter/index.csv")
    parser.add_argument("--scores", help="npz of saved union scores (written when absent)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from gamma_detect.images import load_rgb

    manifest = json.loads((Path(args.model) / "manifest.json").read_text())
    base, bands = CropPolicy.from_dict(manifest["crop_policy"]), manifest["verdict_bands"]
    rows = [r for r in csv.DictReader(open(args.index)) if r.get("label") in ("real", "ai")]
    root = Path(args.index).parent
    policies = candidates(base)
    cache = Path(args.scores) if args.scores else None
    shapes = [(int(r["height"]), int(r["width"])) for r in rows]
    if cache and cache.exists():
        scores = json.loads(cache.read_text())
        scores = [{(k if k == "global" else tuple(map(tuple, json.loads(k)))): v for k, v in s.items()} for s in scores]
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(Path(args.model) / next(
            a["file"] for a in manifest["artifacts"] if a["format"] == "onnx" and a["variant"] == "fp32")), options,
                                       providers=["CPUExecutionProvider"])
        run = lambda v: session.run(["probability"], {session.get_inputs()[0].name: v})[0]  # noqa: E731
        images = [load_rgb(root / r["path"]) for r in rows]
        shapes = [im.shape[:2] for im in images]
        start = time.perf_counter()
        scores = score_union(images, list(policies.values()), run)
        print(f"scored {sum(len(s) for s in scores)} distinct views in {time.perf_counter() - start:.0f} s")
        if cache:
            cache.write_text(json.dumps([{(k if k == "global" else json.dumps(k)): v for k, v in s.items()}
                                         for s in scores]))
    labels = np.array([1 if r["label"] == "ai" else 0 for r in rows])
    groups = np.array([r["family"] for r in rows])   # a photo's family is its source
    results = {}
    for name, policy in policies.items():
        replayed = [replay(policy, shape, s, bands) for shape, s in zip(shapes, scores)]
        probs, views = np.array([p for p, _ in replayed]), np.array([v for _, v in replayed])
        results[name] = {"probs": probs, **summarise(labels, groups, probs, views, bands)}
    print(f"# {len(rows)} images ({labels.sum()} AI), model {manifest['model']['name']} "
          f"{manifest['model']['version']}, in-sample; load average {os.getloadavg()[0]:.1f}")
    print(f"{'policy':<12} {'views/img':>9} {'AI recall':>9} {'photos ai':>9}  {'d recall (95% CI)':>24}  "
          f"{'d photos-ai (95% CI)':>24}  per-source photos in ai")
    for name, r in results.items():
        boot = paired_bootstrap(labels, results["baseline"]["probs"], r["probs"], bands)
        ci = lambda k: f"{boot[k]:+.3f} [{boot[k + '_ci95'][0]:+.3f}, {boot[k + '_ci95'][1]:+.3f}]"  # noqa: E731
        per = " ".join(f"{g}={v:.3f}" for g, v in r["per_source_ai"].items())
        print(f"{name:<12} {r['views_per_image']:>9.2f} {r['ai_recall']:>9.3f} {r['photos_in_ai']:>9.3f}  "
              f"{ci('recall_delta'):>24}  {ci('photos_in_ai_delta'):>24}  {per}")


if __name__ == "__main__":
    main()
