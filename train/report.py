"""The evaluation report: LOSO per-source table, band promise, recipe ablation, reliability diagram, audit."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .trainer import load_checkpoint  # noqa: E402

def plot_reliability(rows: list[dict], path: Path, bins: int = 10) -> list[dict]:
    """Reliability diagram of the calibrated held-out probability (LOSO, one seed); returns the bins."""
    p = 1 / (1 + np.exp(-np.array([r["z"] for r in rows])))
    y = np.array([r["label"] for r in rows])
    edges = np.linspace(0, 1, bins + 1)
    table = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (p >= lo) & ((p < hi) | (hi == 1))
        if inside.any():
            table.append({"low": float(lo), "high": float(hi), "n": int(inside.sum()),
                          "mean_p": float(p[inside].mean()), "ai_share": float(y[inside].mean())})
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.plot([b["mean_p"] for b in table], [b["ai_share"] for b in table], "o-")
    for b in table:
        ax.annotate(str(b["n"]), (b["mean_p"], b["ai_share"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set(xlabel="calibrated probability (held-out source and families)", ylabel="share that is AI",
           title="Reliability, leave-one-photo-source-out (seed 0)", xlim=(0, 1), ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return table


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def loso_tables(summary: dict) -> list[str]:
    """The per-source table of a LOSO summary: worst seed and mean over seeds."""
    seeds = summary["per_seed"]
    lines = ["| held-out photo source | photos | in `ai` (worst / mean) | 95% upper bound (worst seed) | "
             "in `ai`+`likely_ai` (worst / mean) | abstained | AI images held out with it | their recall, "
             "`ai`+`likely_ai` (worst) |", "|---|---|---|---|---|---|---|---|"]
    for unit in sorted(seeds[0]["sources"]):
        rows = [s["sources"][unit] for s in seeds]
        recall = [r["ai_recall_flag"] for r in rows if r["ai_recall_flag"] is not None]
        lines.append(
            f"| {unit} | {rows[0]['photos']} | {_pct(max(r['photo_ai_rate'] for r in rows))} / "
            f"{_pct(np.mean([r['photo_ai_rate'] for r in rows]))} | "
            f"{_pct(max(r['photo_ai_rate_upper95'] for r in rows))} | "
            f"{_pct(max(r['photo_flag_rate'] for r in rows))} / {_pct(np.mean([r['photo_flag_rate'] for r in rows]))}"
            f" | {_pct(max(r['photo_abstain_rate'] for r in rows))} | "
            f"{', '.join(str(r['ai_images']) for r in rows)} | {_pct(min(recall)) if recall else ''} |")
    return lines


def ablation_lines(run_dir: Path) -> list[str]:
    """One row per LOSO recipe run under run_dir/loso-runs (each a summary.json)."""
    lines = ["| recipe | seeds | ROC-AUC (mean) | worst source in `ai` | AI recall `ai`+`likely_ai` (worst seed) | "
             "AI recall `ai` | abstained AI | abstained photos |", "|---|---|---|---|---|---|---|---|"]
    for file in sorted((run_dir / "loso-runs").glob("*/summary.json")):
        s = json.loads(file.read_text())
        w = s["worst"]
        photo_abstain = max(p["photo_abstain_rate"] for p in s["per_seed"])
        lines.append(f"| {file.parent.name} | {len(s['seeds'])} | {s['mean_roc_auc']:.3f} | "
                     f"{_pct(w['max_photo_ai_rate'])} | {_pct(w['ai_recall_flag'])} | {_pct(w['ai_recall_ai'])} | "
                     f"{_pct(w['ai_abstain_rate'])} | {_pct(photo_abstain)} |")
    return lines


CROP_POLICIES = "crop-policies.json"   # in run_dir/loso: bench/policy_loso.py's comparison, when it was run
CROP_POLICY_HEADING = "## Crop policies compared on this protocol"


def crop_policy_lines(comparison: dict) -> list[str]:
    """The crop policies replayed on the protocol (bench/policy_loso.py): rates, views, paired bootstrap."""
    lines = [f"`{comparison['command'].split(' ', 1)[-1]}`: every policy replayed exactly from the same cached views "
             "and probe fits, its bands refitted under it by the same nested steps; seeds "
             f"{', '.join(map(str, comparison['seeds']))}, worst seed; paired bootstrap ({comparison['bootstrap']} "
             "draws of the images, per seed) of the difference to the one-stage policy. The rule (issue 14): the "
             "fewest views that raise no source's rate in `ai` and lose at most 2 points of recall.", "",
             "| policy | views / image | worst source in `ai` | AI in `ai`+`likely_ai` | paired 95% CI vs one stage "
             "(worst-source `ai` rate; recall), per seed |", "|---|---|---|---|---|"]
    for r in comparison["rows"]:
        cis = "; ".join(f"[{b['worst_ai_rate_diff_ci95'][0]:+.3f}, {b['worst_ai_rate_diff_ci95'][1]:+.3f}] / "
                        f"[{b['recall_diff_ci95'][0]:+.3f}, {b['recall_diff_ci95'][1]:+.3f}]" for b in r["paired_bootstrap"])
        lines.append(f"| {r['policy']} | {r['views_per_image']:.2f} | {_pct(r['worst_photo_ai_rate'])} | "
                     f"{_pct(r['ai_recall_flag'])} | {cis} |")
    return lines


def with_crop_policies(model_dir: Path, comparison: dict) -> None:
    """Put the crop-policy comparison into a released model's report (replacing an older one)."""
    _put_section(model_dir, CROP_POLICY_HEADING, crop_policy_lines(comparison), "crop_policies", comparison)


LOCAL_EDIT_HEADING = "## Local AI edits and the decision that uses the localisation"


def with_local_edits(model_dir: Path, summary: dict, decision: dict, mask_calibration: dict, bands: list[dict]) -> None:
    """Put the local-edit protocol's comparison and the released decision into a released model's report."""
    lines = ["`gamma evaluate --protocol local-edit` (`train/fusion_loso.py`): every held-out photo edited with a "
             "region (5-40 % of the image; box, blob or polygon; copied, feathered, Poisson-cloned or colour-matched) "
             "of an AI image of the held-out families, then resized and re-encoded as JPEG; its control is the same "
             "photo processed alike. Edits in `ai`+`likely_ai` and AI images are pooled worst seed on the worst rows; "
             "mask numbers on the edits with every view run; untouched = the held-out photos as published.", "",
             local_edit_table(summary), "",
             f"Released decision (`manifest.json` `decision`, fitted by the same nested steps on every source): "
             f"**{decision['name']}**, {_rule_text(decision)}; head-1 level "
             f"{mask_calibration['level']:.3f} (`mask_calibration`, the map's 0.5)."
             + ("" if decision["name"] == summary["chosen"] else
                f" Released instead of the inner choice `{summary['chosen']}`, which breaks the band promise on the "
                f"outer folds (worst source in `ai`: "
                f"{_pct(summary['decisions'][summary['chosen']]['worst']['photo_in_ai'])}).")
             + " Bands over the fused probability:",
             "", "| verdict | fused probability |", "|---|---|",
             *[f"| {b['name']} | [{b['min']:.3f}, {min(b['max'], 1.0):.3f}) |" for b in bands]]
    _put_section(model_dir, LOCAL_EDIT_HEADING, lines, "local_edit",
                 {"summary": summary, "decision": decision, "mask_calibration": mask_calibration, "bands": bands})


def _fusion_text(fusion: dict) -> str:
    return (f"features {', '.join(f'`{f}`' for f in fusion['features'])}, weights "
            f"{', '.join(f'{w:.3f}' for w in fusion['weights'])}, bias {fusion['bias']:.3f}")


def _rule_text(decision: dict) -> str:
    """A manifest decision in words: one logistic fusion, or two rules (``either``)."""
    if decision.get("rule") == "either":
        region = decision["region"]
        likely = region.get("likely_ai_edge_logit")
        raises = (f"to `ai` alone at logit {region['ai_edge_logit']:.3f}" if likely is None else
                  f"to `likely_ai` at logit {likely:.3f} and to `ai` at {region['ai_edge_logit']:.3f}")
        return (f"two rules: the whole image by {_fusion_text(decision['whole'])}, and a region rule raising the verdict "
                f"{raises} by {_fusion_text(region)}")
    return _fusion_text(decision)


def _put_section(model_dir: Path, heading: str, lines: list[str], key: str, value: dict) -> None:
    """A section of report.md (replacing an older one, else before the reliability diagram) and its report.json key."""
    report_md = model_dir / "report.md"
    text = report_md.read_text()
    section = "\n".join([heading, "", *lines, ""]) + "\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        anchor = text.index("## Reliability of the calibrated probability")
        text = text[:anchor] + section + "\n" + text[anchor:]
    report_md.write_text(text)
    report_json = model_dir / "report.json"
    report = json.loads(report_json.read_text())
    report[key] = value
    report_json.write_text(json.dumps(report, indent=1) + "\n")


def _abstention_text(rule: dict) -> str:
    checks = [f"view spread > {rule['max_view_spread']:.3f}" if rule["max_view_spread"] is not None else None,
              f"JPEG q{rule['quality']} drop > {rule['max_reencode_shift']:.3f}"
              if rule["max_reencode_shift"] is not None else None]
    checks = [c for c in checks if c]
    if not checks:
        return "abstention off (the recipe's `abstain` is false)."
    return f"abstention: {' or '.join(checks)} (calibrated logit), on `ai`/`likely_ai` verdicts only."


def write_report(run_dir: Path, model_dir: Path, checkpoint: Path) -> Path:
    """Write report.json, report.md and reliability.png beside the released model (LOSO protocol)."""
    summary = json.loads((run_dir / "loso" / "summary.json").read_text())
    seed0 = json.loads((run_dir / "loso" / f"seed{summary['seeds'][0]}.json").read_text())
    ckpt = load_checkpoint(checkpoint)
    reliability = plot_reliability(seed0["records"], model_dir / "reliability.png")
    promise, cfg, worst = ckpt["promise"], summary["config"], summary["worst"]
    per_seed = summary["per_seed"]
    lines = [
        "# GAMMA starter model: evaluation report", "",
        "Protocol of record: leave one photo source out (sources with fewer than "
        f"{cfg['min_source_photos']} photos pooled into one unit), the AI generator families dealt to the same folds "
        "(every AI image is scored by a model that never saw its family), seeds "
        f"{', '.join(map(str, summary['seeds']))} (they change the family deal and the inner folds); rates are the "
        "worst seed unless marked mean. Calibration, band edges and abstention thresholds are fitted nested, on "
        "inner leave-one-source-out scores of the training sources only, and the rates below are measured on the "
        "outer held-out source. Recipe (`train/loso.py` LosoConfig): "
        f"`{json.dumps({k: v for k, v in cfg.items() if k != 'clip_onnx'})}`. Folds of seed 0: `folds.json`.", "",
        "## The band promise", "",
        f"- Promise: on a photo source never seen in training, at most {_pct(cfg['max_ai_rate'])} of its photos in "
        f"`ai` and at most {_pct(cfg['max_likely_rate'])} in `likely_ai` or `ai`.",
        f"- Edges fitted {100 * cfg['fit_margin']:.0f} percentage points under each promise on the inner held-out "
        "sources (an edge fitted at the promise itself overshoots it on an unseen source).",
        f"- Measured (worst source, worst seed): **{_pct(worst['max_photo_ai_rate'])}** in `ai` (promise "
        f"{'kept' if worst['max_photo_ai_rate'] <= cfg['max_ai_rate'] else 'NOT kept'}), "
        f"**{_pct(max(worst['photo_flag_rate_by_source'].values()))}** in `likely_ai` or `ai` (promise "
        f"{'kept' if max(worst['photo_flag_rate_by_source'].values()) <= cfg['max_likely_rate'] else 'NOT kept'}); "
        f"AI images of held-out families in `ai`+`likely_ai`: **{_pct(worst['ai_recall_flag'])}**, in `ai`: "
        f"{_pct(worst['ai_recall_ai'])}; abstention (`uncertain`) on {_pct(worst['ai_abstain_rate'])} of them.",
        f"- Issue bar (`ai` <= 5% on every source, >= 75% of AI in `ai`+`likely_ai`): "
        f"**{'met' if summary['bar_met'] else 'NOT met'}**.",
        f"- ROC-AUC of the held-out scores (pooled, mean over seeds): {summary['mean_roc_auc']:.3f}.", "",
        "## Per held-out source", "", *loso_tables(summary), "",
        "Overall per seed: " + "; ".join(
            f"seed {s['seed']}: photos in `ai` {_pct(s['photo_ai_rate'])}, abstained photos "
            f"{_pct(s['photo_abstain_rate'])}, AI recall {_pct(s['ai_recall_flag'])}, abstained AI "
            f"{_pct(s['ai_abstain_rate'])}" for s in per_seed) + ".", "",
        "## Recipes compared on this protocol (ablation)", "", *ablation_lines(run_dir), "",
        *([CROP_POLICY_HEADING, "", *crop_policy_lines(json.loads(policies.read_text())), ""]
          if (policies := run_dir / "loso" / CROP_POLICIES).exists() else []),
        "## Reliability of the calibrated probability", "", "![reliability](reliability.png)", "",
        "| probability bin | images | mean probability | share AI |", "|---|---|---|---|",
        *[f"| [{b['low']:.1f}, {b['high']:.1f}) | {b['n']} | {b['mean_p']:.3f} | {b['ai_share']:.3f} |"
          for b in reliability], "",
        "## Released calibration, bands and abstention", "",
        f"Fitted by the same nested steps on every source: probe C {ckpt['calibration']['probe_C']}, temperature "
        f"{ckpt['calibration']['temperature']:.3f}; {_abstention_text(ckpt['abstention'])}", "",
        "| verdict | calibrated probability |", "|---|---|"]
    for band in ckpt["bands"]:
        lines.append(f"| {band['name']} | [{band['min']:.3f}, {min(band['max'], 1.0):.3f}) |")
    audit = ckpt["audit"]
    training = ckpt["training"]
    lines += ["", "## Shortcut audit", "",
              f"A logistic regression and a shallow tree ensemble on trivial statistics of {audit['views']} training "
              f"views ({', '.join(audit['features'])}), grouped 5-fold: ROC-AUC **{audit['pipeline_auc']:.3f}** "
              f"(limit {audit['limit']}; {'passed' if audit['passed'] else 'FAILED'}); on the raw files' width, "
              f"height, aspect and format: {audit['raw_file_auc']:.3f}.", "",
              "## Training", "",
              f"Final model: all {training['records']} images; global head = the recipe's probe (closed form, "
              f"frozen backbone); stage 2 trains the segmentation heads only ({ckpt['config']['epochs']} epochs, "
              f"correction frozen at zero) on {training['device']} with {training['threads']} threads: "
              f"{training['seconds']:.0f} s, {training['images_per_s']:.1f} images/s."]
    report_md = model_dir / "report.md"
    report_md.write_text("\n".join(lines) + "\n")
    (model_dir / "report.json").write_text(json.dumps(
        {"protocol_of_record": "loso", "loso": summary, "promise": promise, "reliability": reliability, "audit": audit,
         "calibration": ckpt["calibration"], "abstention": ckpt["abstention"], "bands": ckpt["bands"],
         "training": training}, indent=1))
    return report_md


def local_edit_table(summary: dict) -> str:
    """Markdown: per decision variant, the local-edit numbers of record per held-out source (worst seed) and the
    worst over sources (``train/fusion_loso.py`` summary)."""
    lines = [f"Seeds {', '.join(map(str, summary['seeds']))}; worst seed per source. Chosen on inner scores: "
             f"**{summary['chosen']}**. {summary['note']}.", ""]
    head = ("| decision | held-out photo source | photos in `ai` | photos in `ai`+`likely_ai` | edits in `ai`+`likely_ai`"
            " (>= 15 %) | AUC edit vs control | AI images in `ai`+`likely_ai` | mask F1 / IoU (raw IoU) | pointing |"
            " untouched mask fraction mean / median (raw) |")
    lines += [head, "|" + "---|" * 10]
    for name, d in summary["decisions"].items():
        for unit, v in d["by_source"].items():
            lines.append(
                f"| {name} | {unit} | {_pct(v['photo_in_ai'])} | {_pct(v['photo_flagged'])} | "
                f"{_pct(v['edit_flagged'])} ({_pct(v['edit_flagged_large'])}) | {v['auc_edit_vs_control']:.3f} | "
                f"{_pct(v['ai_flagged'])} | {v['mask_f1']:.2f} / {v['mask_iou']:.2f} ({v['mask_iou_raw']:.2f}) | "
                f"{_pct(v['pointing'])} | {_pct(v['photo_mask_mean'])} / {_pct(v['photo_mask_median'])} "
                f"({_pct(v['photo_mask_mean_raw'])} / {_pct(v['photo_mask_median_raw'])}) |")
        w = d["worst"]
        lines.append(f"| **{name}, worst** | all | **{_pct(w['photo_in_ai'])}** | | **{_pct(w['edit_flagged'])} "
                     f"({_pct(w['edit_flagged_large'])})** | **{w['auc_edit_vs_control']:.3f}** | "
                     f"**{_pct(w['ai_recall_flag'])}** (pooled) | IoU **{w['mask_iou']:.2f}** | | "
                     f"**{_pct(w['photo_mask_mean'])} / {_pct(w['photo_mask_median'])}** |")
    return "\n".join(lines)
