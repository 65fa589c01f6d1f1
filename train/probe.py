"""Linear probe on the frozen backbone (the UnivFD recipe), the ablation's baseline.

Features are the backbone's pooled ImageNet features, averaged over the crop
policy's views; the classifier is an L2-regularised logistic regression whose
strength is tuned by grouped cross-validation inside each training fold.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..crops import CropPolicy
from .backbones import create_backbone
from .data import to_tensor

C_GRID = np.logspace(-4, 1, 11)


@torch.inference_mode()
def backbone_features(images: Sequence[np.ndarray], policy: CropPolicy, backbone: str = "efficientnet_lite0",
                      batch_size: int = 32) -> np.ndarray:
    net = create_backbone(backbone).eval().to(memory_format=torch.channels_last)
    out = []
    for image in images:
        views, _ = policy.views(image)
        pooled = [net.forward_features(to_tensor(views[i:i + batch_size]))[1] for i in range(0, len(views), batch_size)]
        out.append(torch.cat(pooled).mean(0).numpy())
    return np.stack(out)


def probe_oof(features: np.ndarray, labels: np.ndarray, groups: Sequence[str], folds: Sequence[int],
              seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold decision values and the regularisation chosen in each fold."""
    folds = np.asarray(folds)
    groups = np.asarray(groups)
    scores = np.empty(len(labels), np.float64)
    chosen = []
    for fold in range(int(folds.max()) + 1):
        train, test = folds != fold, folds == fold
        search = GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
            {"logisticregression__C": C_GRID}, scoring="roc_auc",
            cv=StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=seed))
        search.fit(features[train], labels[train], groups=groups[train])
        chosen.append(float(search.best_params_["logisticregression__C"]))
        scores[test] = search.decision_function(features[test])
    return scores, chosen
