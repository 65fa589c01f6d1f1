"""Head recipes side by side on the local-edit protocol with per-fold heads (issue 21).

Reads the ``summary.json`` of ``gamma evaluate --protocol local-edit --fusion fold_heads=true`` runs (one per head
recipe) and prints, per run and decision variant, the worst held-out source's numbers of record, plus the map's
per-source numbers (the map does not depend on the decision). ``--json`` keeps the table.

    python3 bench/head_recipes.py runs/i21/local-edit-runs/released-recipe runs/i21/local-edit-runs/edits-only-mask \
        --json bench/local-edit-heads.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def rows(run: Path) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    out = {"run": run.name, "recipe": list(summary["config"]["head_recipe"]) if summary["config"].get("fold_heads")
           else "released checkpoint", "seeds": summary["seeds"], "chosen": summary["chosen"], "decisions": {},
           "map_by_source": {}}
    for name, d in summary["decisions"].items():
        w, by = d["worst"], d["by_source"].values()
        out["decisions"][name] = {**w, "photo_flagged": max(v["photo_flagged"] for v in by)}
    first = next(iter(summary["decisions"].values()))["by_source"]
    for unit, v in first.items():
        out["map_by_source"][unit] = {k: v[k] for k in ("mask_iou", "mask_iou_raw", "pointing", "photo_mask_mean",
                                                         "photo_mask_median", "photo_mask_mean_raw",
                                                         "photo_mask_median_raw")}
        # The attention's correction on held-out images (absent in runs before it was recorded): spread, ranking.
        spread = [x for x in v.get("correction_std", []) if x is not None]
        ranks = [x for x in v.get("correction_auc", []) if x is not None]
        out["map_by_source"][unit]["correction_std"] = max(spread) if spread else None
        out["map_by_source"][unit]["correction_auc"] = min(ranks) if ranks else None
    return out


def table(runs: list[dict]) -> str:
    lines = ["| heads | decision | worst source in `ai` | worst in `ai`+`likely_ai` | edits flagged (>= 15 %) | "
             "worst AUC edit vs control | AI images flagged (in `ai`) |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        for name, w in r["decisions"].items():
            lines.append(f"| {r['run']} | {name} | {_pct(w['photo_in_ai'])} | {_pct(w['photo_flagged'])} | "
                         f"{_pct(w['edit_flagged'])} ({_pct(w['edit_flagged_large'])}) | "
                         f"{w['auc_edit_vs_control']:.3f} | {_pct(w['ai_recall_flag'])} ({_pct(w.get('ai_in_ai'))}) |")
    lines += ["", "| heads | held-out source | mask IoU calibrated (raw) | pointing | untouched mean / median "
              "calibrated (raw) | correction spread, logit (AUC edit vs control) |", "|---|---|---|---|---|---|"]
    for r in runs:
        for unit, m in r["map_by_source"].items():
            lines.append(f"| {r['run']} | {unit} | {m['mask_iou']:.3f} ({m['mask_iou_raw']:.2f}) | "
                         f"{_pct(m['pointing'])} | {_pct(m['photo_mask_mean'])} / {_pct(m['photo_mask_median'])} "
                         f"({_pct(m['photo_mask_mean_raw'])} / {_pct(m['photo_mask_median_raw'])}) | "
                         f"{_num(m['correction_std'])} ({_num(m['correction_auc'])}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="local-edit run folders (each with summary.json)")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    runs = [rows(r) for r in args.runs]
    print(table(runs))
    if args.json:
        args.json.write_text(json.dumps({"command": "python3 bench/head_recipes.py " + " ".join(map(str, args.runs)),
                                         "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
