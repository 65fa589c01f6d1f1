"""The validation protocol: grouped k-fold, out-of-fold scores, metrics, ablations.

Groups are the generator family for AI images (all unknown-generator images
one group) and the photo source for real ones, so every fold scores families
and sources that its model never saw. The folds are fixed by a seed and
written to a file before any model is compared.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from ..crops import CropPolicy
from .config import TrainConfig
from .data import ImageCache, to_tensor
from .manipulate import manipulate
from .model import GammaModel, upsample
from .sources import ImageRecord
from .trainer import load_model, train

# Ablation ladder of the k-fold protocol (0.2.x): each row adds one ingredient to the one before; all on
# the pooled-feature probe with a trained correction, as they were measured.
_KFOLD = ["model.global_features=pooled", "train_correction=true"]
VARIANTS: dict[str, list[str]] = {
    "probe": [],  # linear probe on the frozen backbone (see probe.py)
    "cls": [*_KFOLD, "manipulation=false", "model.seg_heads=false", "model.reverse_attention=false"],
    "cls+manip": [*_KFOLD, "manipulation=true", "model.seg_heads=false", "model.reverse_attention=false"],
    "cls+manip+seg": [*_KFOLD, "manipulation=true", "model.seg_heads=true", "model.reverse_attention=false"],
    "gamma": [*_KFOLD, "manipulation=true", "model.seg_heads=true", "model.reverse_attention=true"],
}


def make_folds(records: Sequence[ImageRecord], k: int = 5, seed: int = 0) -> list[int]:
    """Fold index per record, grouped by ``record.group`` and stratified by label."""
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = [-1] * len(records)
    labels = [r.label for r in records]
    groups = [r.group for r in records]
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(records)), labels, groups)):
        for i in test:
            folds[i] = fold
    return folds


def write_folds(path: Path, records: Sequence[ImageRecord], folds: Sequence[int], k: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"k": k, "seed": seed, "rule": "StratifiedGroupKFold by record.group",
                                "assignments": [{"path": str(r.path), "group": r.group, "label": r.label,
                                                 "fold": f} for r, f in zip(records, folds)]}, indent=1))


def read_folds(path: Path, records: Sequence[ImageRecord]) -> list[int]:
    data = json.loads(path.read_text())
    by_path = {a["path"]: a["fold"] for a in data["assignments"]}
    missing = [str(r.path) for r in records if str(r.path) not in by_path]
    if missing:
        raise ValueError(f"{path} does not cover {len(missing)} records (e.g. {missing[0]}); "
                         "delete it to draw new folds, or use the records it was made for")
    return [by_path[str(r.path)] for r in records]


@torch.inference_mode()
def image_logits(model: GammaModel, images: Sequence[np.ndarray], policy: CropPolicy, batch_size: int = 32,
                 progress: bool = False) -> np.ndarray:
    """Mean view logit per image under the crop policy (the same rule the runtimes use)."""
    model.eval()
    views, owners = [], []
    for i, image in enumerate(images):
        v, _ = policy.views(image)
        views.append(v)
        owners += [i] * len(v)
    stacked = np.concatenate(views)
    owners = np.asarray(owners)
    logits = np.empty(len(stacked), np.float32)
    for start in tqdm(range(0, len(stacked), batch_size), desc="scoring", disable=not progress, leave=False):
        batch = to_tensor(stacked[start:start + batch_size]).contiguous(memory_format=torch.channels_last)
        logits[start:start + batch_size] = model(batch).logit.float().numpy()
    return np.array([logits[owners == i].mean() for i in range(len(images))], np.float32)


@torch.inference_mode()
def manipulated_photo_scores(model: GammaModel, reals: Sequence[np.ndarray], policy: CropPolicy, seed: int,
                             per_image: int = 2) -> dict[str, float]:
    """What the model does with manipulated held-out real photos (the clean-image protocol cannot show it).

    Each photo's global view is manipulated ``per_image`` times (seeded). ``manipulation_auc``: ROC-AUC of the
    image logit separating the manipulated views from their clean originals. With segmentation heads, also
    head-1 IoU and pixel F1 against the exact masks.
    """
    if len(reals) < 2:
        return {}
    rng = np.random.default_rng(seed)
    clean_logits, manipulated_logits, ious = [], [], []
    inter = union = tp = fp = fn = 0
    for i, image in enumerate(reals):
        view = policy.views(image)[0][-1]
        donor = policy.views(reals[(i + 1) % len(reals)])[0][-1]
        clean_logits.append(float(model(to_tensor(view[None])).logit[0]))
        for _ in range(per_image):
            sample = manipulate(view, rng, donors=[donor])
            out = model(to_tensor(sample.image[None]))
            manipulated_logits.append(float(out.logit[0]))
            if out.mask_logits is None:
                continue
            pred = upsample(out.mask_logits, view.shape[:2])[0, 0].sigmoid().numpy() > 0.5
            truth = sample.mask.astype(bool)
            a, b = int((pred & truth).sum()), int((pred | truth).sum())
            inter, union = inter + a, union + b
            ious.append(a / b if b else 1.0)
            tp += a
            fp += int((pred & ~truth).sum())
            fn += int((~pred & truth).sum())
    labels = np.r_[np.zeros(len(clean_logits)), np.ones(len(manipulated_logits))]
    scores = {"manipulated_images": len(manipulated_logits),
              "manipulation_auc": float(roc_auc_score(labels, clean_logits + manipulated_logits))}
    if ious:
        scores.update({"mask_iou": float(np.mean(ious)), "mask_iou_pooled": inter / max(union, 1),
                       "mask_f1": 2 * tp / max(2 * tp + fp + fn, 1)})
    return scores


@dataclass
class FoldResult:
    logits: np.ndarray   # out-of-fold logit per record (pooled over folds)
    manipulated: dict    # manipulated_photo_scores, averaged over folds


def cross_validate(cfg: TrainConfig, records: Sequence[ImageRecord], folds: Sequence[int], out_dir: Path,
                   cache: ImageCache, progress: bool = True) -> FoldResult:
    """Train one model per fold and score its held-out records; resumes finished folds.

    A finished fold scored before ``manipulated_photo_scores`` existed gets them from its kept model.
    """
    folds = np.asarray(folds)
    logits = np.full(len(records), np.nan, np.float32)
    rows = []
    for fold in range(int(folds.max()) + 1):
        fold_dir = out_dir / f"fold{fold}"
        oof_file = fold_dir / "oof.json"
        test = np.flatnonzero(folds == fold)
        reals = [cache[records[i].path] for i in test if records[i].label == 0]
        if oof_file.exists():
            saved = json.loads(oof_file.read_text())
            if "manipulated" not in saved and (fold_dir / "model.pt").exists():
                model, _ = load_model(fold_dir / "model.pt")
                saved["manipulated"] = manipulated_photo_scores(model, reals, cfg.crop, seed=cfg.seed + fold)
                oof_file.write_text(json.dumps(saved))
        else:
            train_records = [records[i] for i in np.flatnonzero(folds != fold)]
            fold_cfg = dataclasses.replace(cfg, name=f"{cfg.name}/fold{fold}")
            ckpt = train(fold_cfg, train_records, fold_dir, progress=progress, cache=cache)
            model, _ = load_model(ckpt)
            model = model.to(memory_format=torch.channels_last)
            images = [cache[records[i].path] for i in test]
            fold_logits = image_logits(model, images, cfg.crop, progress=progress)
            saved = {"logits": fold_logits.tolist(),
                     "manipulated": manipulated_photo_scores(model, reals, cfg.crop, seed=cfg.seed + fold)}
            oof_file.write_text(json.dumps(saved))
            (fold_dir / "last.pt").unlink(missing_ok=True)  # optimizer state is not needed once scored
        logits[test] = saved["logits"]
        if saved.get("manipulated"):
            rows.append(saved["manipulated"])
    manipulated = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}
    return FoldResult(logits, manipulated)


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(labels), len(labels))
        if labels[idx].min() != labels[idx].max():
            values.append(roc_auc_score(labels[idx], scores[idx]))
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def metrics(records: Sequence[ImageRecord], scores: np.ndarray, threshold: float = 0.0) -> dict:
    """Pooled metrics of out-of-fold scores; a record counts as detected AI when its score >= threshold."""
    labels = np.array([r.label for r in records])
    predicted = scores >= threshold
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.group, []).append(i)
    per_group = {g: {"n": len(idx), "label": int(labels[idx[0]]),
                     # Detection rate for AI groups, correct-real rate for real groups.
                     "rate": float(np.mean(predicted[idx] == labels[idx]))} for g, idx in sorted(groups.items())}
    lo, hi = bootstrap_auc(labels, scores)
    return {
        "n": len(records), "roc_auc": float(roc_auc_score(labels, scores)), "roc_auc_ci95": [lo, hi],
        "average_precision": float(average_precision_score(labels, scores)),
        "accuracy": float(np.mean(predicted == labels)),
        "real_accuracy": float(np.mean(~predicted[labels == 0])),
        "ai_accuracy": float(np.mean(predicted[labels == 1])),
        "per_group": per_group,
    }


def save_oof(path: Path, records: Sequence[ImageRecord], scores: np.ndarray, folds: Sequence[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "group", "fold", "score"])
        for r, s, fold in zip(records, scores, folds):
            writer.writerow([r.path, r.label, r.group, fold, f"{float(s):.6f}"])


def load_oof(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return np.array([int(r["label"]) for r in rows]), np.array([float(r["score"]) for r in rows])
