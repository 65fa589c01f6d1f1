"""The evaluation report: ROC plot, ablation table, per-group rates, audit, calibration."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from .evaluate import VARIANTS, load_oof  # noqa: E402
from .trainer import load_checkpoint  # noqa: E402

LABELS = {
    "probe": "(1) linear probe, frozen backbone (UnivFD recipe)",
    "cls": "(2) classification head alone, fine-tuned on top of the probe",
    "cls+manip": "(3) + manipulation augmentation",
    "cls+manip+seg": "(4) + two segmentation heads",
    "gamma": "(5) + reverse cross-attention (full GAMMA)",
}


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def plot_roc(run_dir: Path, summary: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for variant in VARIANTS:
        if variant not in summary:
            continue
        seed = sorted(summary[variant], key=int)[0]
        labels, scores = load_oof(run_dir / variant / f"seed{seed}" / "oof.csv")
        fpr, tpr, _ = roc_curve(labels, scores)
        auc = summary[variant][seed]["roc_auc"]
        ax.plot(fpr, tpr, lw=2 if variant == "gamma" else 1, label=f"{variant} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate (real called AI)", ylabel="true positive rate (AI detected)",
           title="Out-of-fold ROC, leave-family-out 5-fold")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(run_dir: Path, model_dir: Path, checkpoint: Path) -> Path:
    """Write report.json, report.md and roc.png beside the released model."""
    summary = json.loads((run_dir / "protocol.json").read_text())
    folds = json.loads((run_dir / "folds.json").read_text())
    ckpt = load_checkpoint(checkpoint)
    plot_roc(run_dir, summary, model_dir / "roc.png")
    gamma = summary["gamma"]
    seeds = sorted(gamma, key=int)
    main = gamma[seeds[0]]
    aucs = [gamma[s]["roc_auc"] for s in seeds]
    lines = [
        "# GAMMA starter model: evaluation report", "",
        "Protocol (fixed before any model was compared): grouped, label-stratified 5-fold cross-validation on "
        f"the starter set ({main['n']} images, text-dominated posters excluded), fold seed {folds['seed']}. Groups "
        "are the generator family for AI images (every unknown-generator or upscaler image in one group) and the "
        "photo source (package and activity) for real ones, so every score comes from a model that never saw "
        "that family or source. Images are scored with the released crop policy "
        f"({ckpt['crop_policy']['name']}, input {ckpt['crop_policy']['input_size']} px). Folds: `folds.json`.", "",
        "## Full GAMMA, out of fold", "",
        f"- ROC-AUC (seed {seeds[0]}): **{main['roc_auc']:.3f}**, bootstrap 95% CI "
        f"[{main['roc_auc_ci95'][0]:.3f}, {main['roc_auc_ci95'][1]:.3f}]",
        f"- ROC-AUC over seeds {', '.join(seeds)}: {_mean_std(aucs)} (mean ± std)",
        f"- average precision {main['average_precision']:.3f}; accuracy at p = 0.5: {main['accuracy']:.3f} "
        f"(real {main['real_accuracy']:.3f}, AI {main['ai_accuracy']:.3f})",
    ]
    loc = main.get("manipulated") or {}
    if loc:
        lines.append(f"- manipulated held-out real photos ({loc['manipulated_images']:.0f} per fold on average, "
                     f"against their clean originals): image ROC-AUC {loc['manipulation_auc']:.3f}")
    if "mask_iou" in loc:
        lines.append(f"- head-1 localisation on manipulated held-out real photos ({loc['manipulated_images']:.0f} "
                     f"per fold on average): mean IoU {loc['mask_iou']:.3f}, pixel F1 {loc['mask_f1']:.3f}")
    lines += ["", "![ROC](roc.png)", "", "## Ablation (same folds)", "",
              "| variant | seeds | ROC-AUC | 95% CI (first seed) | AP | real acc | AI acc | manipulated AUC | mask IoU |",
              "|---|---|---|---|---|---|---|---|---|"]
    for variant, label in LABELS.items():
        if variant not in summary:
            continue
        runs = summary[variant]
        first = runs[sorted(runs, key=int)[0]]
        manipulated = [r["manipulated"]["manipulation_auc"] for r in runs.values()
                       if (r.get("manipulated") or {}).get("manipulation_auc") is not None]
        iou = (first.get("manipulated") or {}).get("mask_iou")
        lines.append(
            f"| {label} | {len(runs)} | {_mean_std([r['roc_auc'] for r in runs.values()])} | "
            f"[{first['roc_auc_ci95'][0]:.3f}, {first['roc_auc_ci95'][1]:.3f}] | "
            f"{_mean_std([r['average_precision'] for r in runs.values()])} | "
            f"{_mean_std([r['real_accuracy'] for r in runs.values()])} | "
            f"{_mean_std([r['ai_accuracy'] for r in runs.values()])} | "
            f"{_mean_std(manipulated) if manipulated else ''} | {'' if iou is None else f'{iou:.3f}'} |")
    lines += ["", "Rows 2-5 share one recipe (`TrainConfig`): the backbone frozen with its ImageNet statistics, the "
              "global head fitted as row 1's tuned probe on each training fold, and the classification head trained "
              "as a correction added to it (starting at zero); each row adds one ingredient. Manipulated AUC: the image "
              "score separating manipulated held-out real photos (inpainted, copy-moved, spliced, AI-patch spliced) "
              "from their clean originals, which the clean-image protocol above cannot show.",
              "", "## Per-group rates (full GAMMA, first seed, p = 0.5)", "",
              "AI groups: share detected as AI. Real groups: share kept as real.", "",
              "| group | images | rate |", "|---|---|---|"]
    for group, row in sorted(main["per_group"].items(), key=lambda kv: (-kv[1]["label"], kv[0])):
        lines.append(f"| {group} | {row['n']} | {row['rate']:.2f} |")
    audit = ckpt["audit"]
    lines += ["", "## Shortcut audit", "",
              f"A logistic regression and a shallow tree ensemble on trivial statistics of {audit['views']} training "
              f"views ({', '.join(audit['features'])}), grouped 5-fold: ROC-AUC **{audit['pipeline_auc']:.3f}** "
              f"(limit {audit['limit']}; {'passed' if audit['passed'] else 'FAILED'}). The same classifier on the raw "
              f"files' width, height, aspect and format reaches {audit['raw_file_auc']:.3f}: that is the shortcut "
              "the shared crop, resize and re-encoding remove.", "",
              "## Calibration and verdict bands", "",
              f"Temperature {ckpt['calibration']['temperature']:.3f}, fitted on the pooled out-of-fold logits of the "
              "full model. The `ai` band starts where at most 5% of real out-of-fold images score.", "",
              "| verdict | calibrated probability |", "|---|---|"]
    for band in ckpt["bands"]:
        lines.append(f"| {band['name']} | [{band['min']:.3f}, {min(band['max'], 1.0):.3f}) |")
    training = ckpt["training"]
    lines += ["", "## Training", "",
              f"Final model: all {training['records']} images, {ckpt['config']['epochs']} epochs, on "
              f"{training['device']} with {training['threads']} threads: {training['seconds']:.0f} s, "
              f"{training['images_per_s']:.1f} images/s."]
    report_md = model_dir / "report.md"
    report_md.write_text("\n".join(lines) + "\n")
    (model_dir / "report.json").write_text(json.dumps(
        {"protocol": summary, "folds": {"k": folds["k"], "seed": folds["seed"]}, "audit": audit,
         "calibration": ckpt["calibration"], "bands": ckpt["bands"], "training": training}, indent=1))
    return report_md
