"""Shortcut audit: can trivial statistics of what the network sees separate the classes?

A logistic regression and a shallow gradient-boosted tree ensemble on per-channel means and variances, 8x8 blockiness and
high-frequency energy of the training pipeline's output views is scored by
grouped cross-validation. If it separates AI from real images, the network
could learn the same shortcut instead of generation traces. For contrast the
same classifier is run on the raw files' properties (size, aspect, format),
which the pipeline is there to hide.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .config import TrainConfig
from .data import GammaDataset, ImageCache
from .sources import ImageRecord

AUDIT_LIMIT = 0.65
VIEW_FEATURES = ("mean_r", "mean_g", "mean_b", "var_r", "var_g", "var_b", "blockiness_8x8", "hf_energy")


def view_statistics(view: np.ndarray) -> np.ndarray:
    """Trivial statistics of one HxWx3 uint8 view."""
    x = view.astype(np.float32)
    grey = x.mean(2)
    col = np.abs(np.diff(grey, axis=1))
    row = np.abs(np.diff(grey, axis=0))
    # Blockiness: gradient across 8-px block boundaries relative to inside blocks.
    at_edge = (col[:, 7::8].mean() + row[7::8].mean()) / 2
    inside = (col.mean() + row.mean()) / 2
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    h, w = grey.shape
    yy, xx = np.ogrid[:h, :w]
    radius = np.hypot(yy - h / 2, xx - w / 2)
    hf = spectrum[radius > min(h, w) / 4].sum() / max(spectrum.sum(), 1e-9)
    return np.array([*x.mean((0, 1)), *x.var((0, 1)), at_edge / max(inside, 1e-6), hf], np.float64)


def _cv_auc(features: np.ndarray, labels: np.ndarray, groups: Sequence[str], seed: int) -> float:
    """Grouped-CV ROC-AUC of the better of a linear and a shallow tree classifier."""
    cv = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    classifiers = (make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                   HistGradientBoostingClassifier(max_depth=3, max_iter=100, random_state=seed))
    aucs = []
    for classifier in classifiers:
        scores = cross_val_predict(classifier, features, labels, groups=groups, cv=cv, method="predict_proba")[:, 1]
        aucs.append(float(roc_auc_score(labels, scores)))
    return max(aucs)


def shortcut_audit(cfg: TrainConfig, records: Sequence[ImageRecord], views_per_image: int = 2,
                   cache: ImageCache | None = None, progress: bool = True) -> dict:
    """ROC-AUC of the trivial-statistics classifier on pipeline views and on raw file properties."""
    dataset = GammaDataset(records, cfg.crop, cfg.augment, cfg.seed, manipulation=False, cache=cache,
                           progress=progress)
    features, labels, groups = [], [], []
    for epoch in range(views_per_image):
        dataset.set_epoch(epoch)
        for i, record in enumerate(dataset.records):
            features.append(view_statistics(dataset.sample(i).image))
            labels.append(record.label)
            groups.append(record.group)
    features, labels = np.stack(features), np.array(labels)
    raw = np.array([[r.width, r.height, r.width / max(r.height, 1), r.format == "WEBP", r.format == "JPEG"]
                    for r in records], np.float64)
    raw_labels = np.array([r.label for r in records])
    result = {
        "features": list(VIEW_FEATURES),
        "views": len(labels),
        "pipeline_auc": _cv_auc(features, labels, groups, cfg.seed),
        "raw_file_auc": _cv_auc(raw, raw_labels, [r.group for r in records], cfg.seed),
        "limit": AUDIT_LIMIT,
        "per_feature_auc": {name: float(max(a, 1 - a)) for name, a in
                            ((n, roc_auc_score(labels, features[:, j])) for j, n in enumerate(VIEW_FEATURES))},
    }
    result["passed"] = result["pipeline_auc"] <= AUDIT_LIMIT
    return result
