"""Parity between two runs of the deployable graph on the same real images (numpy only).

Compared per view (the raw graph outputs) and per image (the combined
probability a runtime reports): the largest absolute difference of the
probabilities, of the head-1 masks and of the head-2 source maps.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..crops import CropPolicy
from ..runtime.detector import combine_probabilities

# Parity bounds the export must meet: ONNX Runtime FP32 vs PyTorch, and FP16 (ONNX, TensorRT) vs FP32.
FP32_PROBABILITY = 1e-4
FP32_MASK = 1e-3
FP16_PROBABILITY = 1e-2


def parity(reference: Callable[[np.ndarray], tuple], candidate: Callable[[np.ndarray], tuple],
           images: Sequence[np.ndarray], policy: CropPolicy, batch: int = 32,
           progress: Callable[[int], None] | None = None) -> dict:
    worst = {"probability": 0.0, "mask": 0.0, "sources": 0.0, "image_probability": 0.0}
    mean_mask, views_seen = 0.0, 0
    for image in images:
        views, _ = policy.views(image)
        combined = []
        for start in range(0, len(views), batch):
            chunk = np.ascontiguousarray(views[start:start + batch])
            a, b = reference(chunk), candidate(chunk)
            for key, x, y in zip(("probability", "mask", "sources"), a, b):
                worst[key] = max(worst[key], float(np.max(np.abs(np.asarray(x, np.float64) - y))))
            mean_mask += float(np.abs(np.asarray(a[1], np.float64) - b[1]).mean()) * len(chunk)
            views_seen += len(chunk)
            combined.append((a[0], b[0]))
        pa = combine_probabilities(np.concatenate([c[0] for c in combined]))
        pb = combine_probabilities(np.concatenate([c[1] for c in combined]))
        worst["image_probability"] = max(worst["image_probability"], abs(pa - pb))
        if progress:
            progress(1)
    return {"images": len(images), "views": views_seen,
            **{f"max_abs_{k}_diff": v for k, v in worst.items()},
            "mean_abs_mask_diff": mean_mask / max(views_seen, 1)}


def within(report: dict, probability: float, mask: float | None = None, views: bool = True) -> bool:
    ok = report["max_abs_image_probability_diff"] <= probability
    ok = ok and (not views or report["max_abs_probability_diff"] <= probability)
    return ok and (mask is None or report["max_abs_mask_diff"] <= mask)


def checked_parity(reference: Callable[[np.ndarray], tuple], candidate: Callable[[np.ndarray], tuple],
                   images: Sequence[np.ndarray], policy: CropPolicy, *, names: tuple[str, str], image_source: str,
                   probability: float, mask: float | None = None, views: bool = True,
                   progress: Callable[[int], None] | None = None) -> dict:
    """:func:`parity` as an artifact records it: what ran against what, on which images, the bounds, and
    ``passed``. ``views=False`` bounds only the images' probabilities (what a runtime reports), not each view's."""
    report = parity(reference, candidate, images, policy, progress=progress)
    bounds = {"image_probability" if not views else "probability": probability,
              **({"mask": mask} if mask is not None else {})}
    report.update(reference=names[0], candidate=names[1], image_source=image_source, bounds=bounds,
                  passed=within(report, probability, mask, views))
    return report
