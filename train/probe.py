"""Linear probe on the frozen backbone (the UnivFD recipe): the ablation's baseline and GAMMA's global head.

Features are the backbone's pooled ImageNet features, averaged over the crop
policy's views; the classifier is an L2-regularised logistic regression whose
strength is tuned by grouped cross-validation inside each training fold.
Because the crop policy averages view logits and the probe is linear, the same
probe applied per view as an ``nn.Linear`` gives exactly the probe's score.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from ..crops import CropPolicy
from .backbones import Backbone, create_backbone
from .data import to_tensor

C_GRID = np.logspace(-4, 1, 11)


@torch.inference_mode()
def backbone_features(images: Sequence[np.ndarray], policy: CropPolicy, backbone: str | Backbone = "efficientnet_lite0",
                      batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """Pooled feature per image, averaged over its crop-policy views (a backbone name or a module)."""
    net = create_backbone(backbone) if isinstance(backbone, str) else backbone
    net = net.eval().to(memory_format=torch.channels_last)
    device = next(net.parameters()).device
    out = []
    for image in tqdm(images, desc="probe features", unit="img", disable=not progress, leave=False):
        views, _ = policy.views(image)
        pooled = [net.forward_features(to_tensor(views[i:i + batch_size]).to(device))[1]
                  for i in range(0, len(views), batch_size)]
        out.append(torch.cat(pooled).float().mean(0).cpu().numpy())
    return np.stack(out)


def probe_oof(features: np.ndarray, labels: np.ndarray, groups: Sequence[str], folds: Sequence[int],
              seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold decision values and the regularisation chosen in each fold."""
    folds = np.asarray(folds)
    groups = np.asarray(groups)
    labels = np.asarray(labels)
    scores = np.empty(len(labels), np.float64)
    chosen = []
    for fold in range(int(folds.max()) + 1):
        train, test = folds != fold, folds == fold
        c = _tune_c(features[train], labels[train], groups[train], seed)
        chosen.append(c)
        scores[test] = _probe(c).fit(features[train], labels[train]).decision_function(features[test])
    return scores, chosen


def fit_probe(features: np.ndarray, labels: np.ndarray, groups: Sequence[str],
              seed: int = 0) -> tuple[np.ndarray, float, float]:
    """The tuned probe as one linear map on raw features: (weight, bias, chosen C).

    The standardisation is folded into the weights, so the probe becomes a plain
    ``nn.Linear`` on the pooled feature (GAMMA's global head).
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    c = _tune_c(features, labels, groups, seed)
    pipeline = _probe(c).fit(features, labels)
    scaler, logistic = pipeline[0], pipeline[1]
    weight = logistic.coef_[0] / scaler.scale_
    bias = float(logistic.intercept_[0] - weight @ scaler.mean_)
    return weight, bias, c


def _probe(c: float):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def _tune_c(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int) -> float:
    """The C with the best pooled inner out-of-fold ROC-AUC (grouped folds).

    Pooled, because with few large groups a single inner fold can hold one class only, where a
    per-fold AUC is undefined.
    """
    inner = min(4, *(len(set(groups[labels == c])) for c in (0, 1)))
    if inner < 2:
        raise ValueError("the linear probe's inner cross-validation needs at least 2 groups of each class in "
                         "the training folds; use fewer outer folds or more groups")
    cv = StratifiedGroupKFold(n_splits=inner, shuffle=True, random_state=seed)
    aucs = [roc_auc_score(labels, cross_val_predict(_probe(c), features, labels, groups=groups, cv=cv,
                                                    method="decision_function")) for c in C_GRID]
    return float(C_GRID[int(np.argmax(aucs))])
