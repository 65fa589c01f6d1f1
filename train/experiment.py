"""From records to a released model: protocol, ablation, final training, calibration, report.

Everything is resumable: folds, fold models and out-of-fold scores are files
in the run folder, and a finished step is never redone.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .audit import shortcut_audit
from .config import TrainConfig, apply_overrides
from .data import ImageCache
from .loso import LosoConfig, release_calibration
from .evaluate import (VARIANTS, cross_validate, load_oof, make_folds, metrics, read_folds, save_oof,
                       write_folds)
from .probe import backbone_features, probe_oof
from .sources import ImageRecord, load_records
from .trainer import load_model, save_checkpoint, train


def training_records(cfg: TrainConfig) -> list[ImageRecord]:
    records = load_records(cfg.data)
    if cfg.exclude_text:
        records = [r for r in records if "text" not in r.flags.split()]
    return records


def run_protocol(cfg: TrainConfig, run_dir: Path, variants: Sequence[str], seeds: Sequence[int], k: int = 5,
                 fold_seed: int = 0, progress: bool = True) -> dict:
    """Out-of-fold metrics per variant and seed on fixed grouped folds; returns and writes protocol.json."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    records = training_records(cfg)
    folds_file = run_dir / "folds.json"
    if folds_file.exists():
        folds = read_folds(folds_file, records)
    else:
        folds = make_folds(records, k, fold_seed)
        write_folds(folds_file, records, folds, k, fold_seed)
    cache = ImageCache([r.path for r in records], progress)
    labels = np.array([r.label for r in records])
    summary_file = run_dir / "protocol.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    features = None
    for variant in variants:
        for seed in seeds:
            out = run_dir / variant / f"seed{seed}"
            oof_file = out / "oof.csv"
            previous = summary.get(variant, {}).get(str(seed), {})
            extra: dict = {}
            started = time.perf_counter()
            if variant == "probe":
                if oof_file.exists():
                    _, scores = load_oof(oof_file)
                    extra["chosen_C"] = previous.get("chosen_C")
                else:
                    if features is None:
                        features = backbone_features([cache[r.path] for r in records], cfg.crop, cfg.model.backbone)
                    scores, extra["chosen_C"] = probe_oof(features, labels, [r.group for r in records], folds, seed)
            elif oof_file.exists() and not (out / "fold0").is_dir():  # fold folders removed: keep the record
                _, scores = load_oof(oof_file)
                extra["manipulated"] = previous.get("manipulated", {})
            else:  # finished folds are read back, not retrained
                vcfg = apply_overrides(cfg, [*VARIANTS[variant], f"seed={seed}", f"name={variant}/seed{seed}"])
                result = cross_validate(vcfg, records, folds, out, cache, progress)
                scores = result.logits
                extra["manipulated"] = result.manipulated
            if not oof_file.exists():
                save_oof(oof_file, records, scores, folds)
            extra["seconds"] = previous.get("seconds", time.perf_counter() - started)
            summary.setdefault(variant, {})[str(seed)] = {**metrics(records, np.asarray(scores)), **extra}
            summary_file.write_text(json.dumps(summary, indent=1))
    return summary


def release(cfg: TrainConfig, run_dir: Path, model_dir: Path, loso_cfg: LosoConfig,
            cache_root: str | Path = "work/features", progress: bool = True) -> Path:
    """Train the final model on every record and write the release.

    The global head, its temperature, the band edges and the abstention rule come from the
    leave-one-source-out recipe fitted on every source (``release_calibration``); the promise
    written beside them is what the outer protocol measured (``run_dir/loso/summary.json``,
    from ``run_loso`` with the same recipe).
    """
    summary_file = run_dir / "loso" / "summary.json"
    if not summary_file.exists():
        raise FileNotFoundError(f"{summary_file} not found: run `gamma evaluate --protocol loso --out {run_dir}` "
                                "first; the release states the promise that run measured")
    summary = json.loads(summary_file.read_text())
    if summary["config"] != loso_cfg.to_dict():
        raise ValueError(f"{summary_file} was measured with another recipe ({summary['config']}); rerun the "
                         "protocol with this one")
    wanted = "multiscale" if loso_cfg.features.startswith("multiscale") else "pooled"
    if "clip" in loso_cfg.features or cfg.model.global_features != wanted or cfg.train_correction:
        raise ValueError(f"the released recipe needs model.global_features={wanted}, train_correction=false and "
                         "a Lite0-only feature recipe (the exported graph holds no CLIP tower)")
    records = training_records(cfg)
    if not cfg.model.pretrained:
        raise ValueError("the LOSO probe is fitted on the pretrained backbone's features: model.pretrained must be true")
    cal, weight, bias = release_calibration(records, cfg.crop, loso_cfg, cache_root, progress=progress)
    cache = ImageCache([r.path for r in records], progress)
    started = time.perf_counter()
    final = train(cfg, records, run_dir / "final", progress=progress, cache=cache, global_head=(weight, bias))
    train_seconds = time.perf_counter() - started
    audit = shortcut_audit(cfg, records, cache=cache, progress=progress)
    epochs = [json.loads(line) for line in (run_dir / "final" / "metrics.jsonl").read_text().splitlines()]
    epoch_rates = [row["images_per_s"] for row in epochs if row.get("end")]
    training = {"seconds": sum(row.get("seconds", 0) for row in epochs if row.get("end")) or train_seconds,
                "images_per_s": float(np.mean(epoch_rates)) if epoch_rates else None,
                "records": len(records), "device": "cuda" if torch.cuda.is_available() else "cpu",
                "threads": cfg.threads}
    model, _ = load_model(final)
    model_dir.mkdir(parents=True, exist_ok=True)
    out = model_dir / f"gamma-{cfg.name}.pt"
    worst = summary["worst"]
    promise = {"protocol": "leave-one-photo-source-out, generator families held out with the source's fold, "
                           "bands fitted nested on the training sources",
               "ai_band_max_photo_rate": loso_cfg.max_ai_rate, "likely_ai_band_max_photo_rate": loso_cfg.max_likely_rate,
               "measured_worst_photo_ai_rate": worst["max_photo_ai_rate"],
               "measured_photo_ai_rate_by_source": worst["photo_ai_rate_by_source"],
               "measured_photo_flag_rate_by_source": worst["photo_flag_rate_by_source"],
               "measured_worst_photo_flag_rate": max(worst["photo_flag_rate_by_source"].values()),
               "fit_margin": loso_cfg.fit_margin,
               "measured_ai_recall_flag": worst["ai_recall_flag"], "measured_ai_recall_ai": worst["ai_recall_ai"],
               "measured_ai_abstain_rate": worst["ai_abstain_rate"], "seeds": summary["seeds"],
               "aggregate": "worst seed", "mean_roc_auc": summary["mean_roc_auc"], "bar_met": summary["bar_met"]}
    save_checkpoint(out, model, cfg, calibration={"temperature": cal.temperature, "probe_C": cal.c},
                    bands=cal.bands(), abstention=cal.rule.to_dict(), promise=promise, crop_policy=cfg.crop.to_dict(),
                    training=training, audit=audit, data={"spec": cfg.data, "records": len(records)},
                    loso={"config": loso_cfg.to_dict(), "release_fit": cal.to_dict()})
    write_release_files(cfg, records, run_dir, model_dir)
    return out


def write_release_files(cfg: TrainConfig, records: Sequence[ImageRecord], run_dir: Path, model_dir: Path) -> None:
    """The released model's config, protocol folds (LOSO, seed 0: the export's INT8 check scores a fold that
    fold's model never saw) and training-data list, beside it."""
    (model_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    run = json.loads((run_dir / "loso" / "seed0.json").read_text())
    by_name = {row["path"]: row for row in run["records"]}
    folds = {"k": len(run["folds"]), "seed": run["seed"],
             "rule": "leave one photo unit out (sources under min_source_photos pooled); AI families dealt to folds",
             "held_out": [f["held_out"] for f in run["folds"]],
             "assignments": [{"path": r.path.name, "group": r.group, "label": r.label,
                              "fold": by_name[r.path.name]["fold"]} for r in records]}
    (model_dir / "folds.json").write_text(json.dumps(folds, indent=1))
    with open(model_dir / "training_data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "group", "family", "width", "height", "format"])
        for r in records:
            writer.writerow([r.path.name, "ai" if r.label else "real", r.group, r.family, r.width, r.height, r.format])
