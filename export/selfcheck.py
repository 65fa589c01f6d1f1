"""Build side of the load-time self-check: choose the reference views, store them with their FP32 outputs.

The runtime (``gamma_detect/runtime/selfcheck.py``) runs a reduced-precision artifact on these views before it
serves it. The views are chosen to make that check sensitive and small:

- views whose FP32 probability is nearest 0.5, where a kernel's error moves the probability most;
- at most one view per image, so one odd image does not dominate;
- lossless PNG (the check compares numbers: a lossy decode could differ between libraries), within a byte
  budget, so the model folder stays small.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..crops import CropPolicy
from ..files import atomic_path, sha256_file

VIEWS = 8
BYTE_BUDGET = 400_000
INT8_BOUND = {"statistic": "mean_abs_probability_diff", "max": 0.02}
FP16_BOUND = {"statistic": "max_abs_probability_diff", "max": 0.01}


def _png_bytes(views: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate(list(views), axis=0)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def choose_views(run: Callable[[np.ndarray], tuple], images: Sequence[np.ndarray], policy: CropPolicy,
                 count: int = VIEWS, budget: int = BYTE_BUDGET) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` views (one per image, FP32 probability nearest 0.5 first) whose PNG fits ``budget``."""
    candidates = []
    for image in images:
        views, _ = policy.views(image)
        p = np.asarray(run(views)[0], np.float64)
        best = int(np.argmin(np.abs(p - 0.5)))
        candidates.append((abs(p[best] - 0.5), views[best], p[best]))
    candidates.sort(key=lambda c: c[0])
    chosen: list[np.ndarray] = []
    probabilities: list[float] = []
    for _, view, p in candidates:
        if len(chosen) == count:
            break
        if len(_png_bytes(np.stack(chosen + [view]))) <= budget:
            chosen.append(view)
            probabilities.append(float(p))
    if not chosen:
        raise ValueError(f"no view fits the self-check's {budget} byte budget")
    return np.stack(chosen), np.asarray(probabilities)


def write_self_check(manifest: dict, out: Path, name: str, run_fp32: Callable[[np.ndarray], tuple],
                     images: Sequence[np.ndarray], policy: CropPolicy, image_source: str) -> np.ndarray:
    """Write ``NAME-self-check.png`` and the manifest's ``self_check`` entry; returns the views as stored."""
    views, _ = choose_views(run_fp32, images, policy)
    path = out / f"{name}-self-check.png"
    with atomic_path(path, ".tmp.png") as tmp:
        tmp.write_bytes(_png_bytes(views))
    with Image.open(path) as image:  # the reference is what the runtime will read back
        stored = np.asarray(image.convert("RGB")).reshape(views.shape)
    reference = np.asarray(run_fp32(stored)[0], np.float64)
    manifest["self_check"] = {
        "file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, "views": int(len(views)),
        "fp32_probability": [float(p) for p in reference], "image_source": image_source,
        "rule": "one view per image, FP32 probability nearest 0.5 first, lossless PNG stacked top to bottom",
        "bounds": {"int8": INT8_BOUND, "fp16": FP16_BOUND},
    }
    return stored
