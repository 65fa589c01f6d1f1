"""A checkpoint's per-view outputs, computed once and cached on disk: what the local-edit protocol replays.

``RegionOutputs`` runs a checkpoint's backbone, heads and reverse cross-attention once on every view of an image
and caches per view the probe's feature row, the head-1 map, the head-2 maps and the attention's correction of
the view logit (``<cache>/<key>/<folder>/<file>.npz``), so every probe fit, fusion and mask calibration of the
protocol (``train/fusion_loso.py``) replays from the cache. The key is a digest of the weights: the released
checkpoint and each fold's heads (``train/fold_heads.py``) have their own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..crops import CropPolicy
from ..files import atomic_path
from ..images import load_rgb
from .data import to_tensor


@dataclass
class ViewOutputs:
    """One image's per-view outputs in the one-stage cache order (grid crops, then the global view)."""
    rows: np.ndarray        # (V, D) the probe's feature row of each view
    mask: np.ndarray        # (V, M, M) head-1 probability
    sources: np.ndarray     # (V, C, M, M) head-2 softmax
    size: tuple[int, int]   # the image's (height, width)
    correction: np.ndarray  # (V,) the reverse cross-attention's correction of each view's logit (0: not trained)


class RegionOutputs:
    """A checkpoint's backbone and heads run once on every view of an image, cached on disk."""

    def __init__(self, checkpoint: str | Path, policy: CropPolicy, root: str | Path):
        from .trainer import load_model

        self.model, _ = load_model(checkpoint)
        self.policy = replace(policy, coarse_grid=None, refine_bands=())  # every view, in the cache's order
        # Keyed by the weights, not the file: a release that only adds its decision to the checkpoint keeps the cache.
        weights = hashlib.sha256()
        for name, tensor in self.model.state_dict().items():
            weights.update(name.encode())
            weights.update(tensor.detach().contiguous().numpy().tobytes())
        digest = weights.hexdigest()[:12]
        self.root = Path(root) / f"{digest}-grid{self.policy.max_grid}-{self.policy.input_size}"

    @torch.inference_mode()
    def run(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        model = self.model
        rows, masks, sources, corrections = [], [], [], []
        for start in range(0, len(views), 16):
            x = to_tensor(views[start:start + 16])
            feats, pooled = model.backbone.forward_features(x)
            decoded = model.decoder(feats)
            mask_logits, source_logits = model.mask_head(decoded), model.source_head(decoded)
            rows.append(model.global_feature(feats, pooled).numpy())
            masks.append(torch.sigmoid(mask_logits[:, 0]).numpy())
            sources.append(torch.softmax(source_logits, 1).numpy())
            cls_feature = pooled
            if model.cfg.reverse_attention:
                cls_feature = model.reverse_attention(pooled, torch.cat([decoded, mask_logits, source_logits], 1))
            corrections.append(model.classifier(cls_feature)[:, 0].numpy())
        return np.concatenate(rows), np.concatenate(masks), np.concatenate(sources), np.concatenate(corrections)

    def get(self, path: Path) -> ViewOutputs:
        file = self.root / Path(path).parent.name / f"{Path(path).name}.npz"  # each seed's edits share file names
        if not file.exists():
            image = load_rgb(path)
            views, _ = self.policy.views(image)
            rows, mask, sources, correction = self.run(views)
            file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(file, ".tmp.npz") as tmp:
                np.savez(tmp, rows=rows.astype(np.float16), mask=mask.astype(np.float16),
                         sources=sources.astype(np.float16), size=np.array(image.shape[:2]),
                         correction=correction.astype(np.float32))
        data = np.load(file)
        # Caches written before the correction was recorded hold a model whose correction is zero.
        correction = data["correction"] if "correction" in data else np.zeros(len(data["rows"]), np.float32)
        return ViewOutputs(data["rows"].astype(np.float32), data["mask"].astype(np.float32),
                           data["sources"].astype(np.float32), tuple(int(v) for v in data["size"]), correction)
