"""Shared fixtures: synthetic photos and a tiny on-disk dataset (no starter images in tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter


def synthetic_photo(height: int, width: int, seed: int) -> np.ndarray:
    """A textured RGB image: gradients, shapes and noise, so manipulations change real pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    base = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], -1) * 180
    for _ in range(6):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(8, max(9, min(height, width) / 3))
        base[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] += rng.uniform(-60, 60, 3)
    base += rng.normal(0, 12, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A CSV index over 16 generated images: 8 'real' (noisy JPEG photos) and 8 'ai' (smooth WebP squares)."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    rows = ["path,label,group,family"]
    for i in range(16):
        label = "ai" if i % 2 else "real"
        h, w = (160, 160) if label == "ai" else (140 + 8 * i, 200)
        image = synthetic_photo(h, w, i)
        if label == "ai":
            image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(2)))
        name = f"{label}_{i}.{'webp' if label == 'ai' else 'jpg'}"
        Image.fromarray(image).save(root / name, quality=90)
        rows.append(f"{name},{label},{label}:g{i % 8},{'gen' if label == 'ai' else 'cam'}{i % 8}")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root / "index.csv"
