"""The heatmap overlay: a head-1 map drawn over an image, as the extension shows it ("Show where")."""

from __future__ import annotations

import cv2
import numpy as np


def overlay_rgba(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width, 4) uint8 BGRA at the image's size: transparent where the calibrated map is at or under
    0.5 (no region stands out there), yellow to red and more opaque as it rises above."""
    m = cv2.resize(np.asarray(mask, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    level = np.clip((m - 0.5) * 2.0, 0.0, 1.0)
    bgra = np.zeros((height, width, 4), np.uint8)
    bgra[..., 1] = np.rint(255 * (1 - level)).astype(np.uint8)   # green fades: yellow -> red
    bgra[..., 2] = 255
    bgra[..., 3] = np.where(m > 0.5, np.rint(60 + 120 * level), 0).astype(np.uint8)  # at most ~70 % opaque
    return bgra


def write_overlay(path: str, image: np.ndarray, mask: np.ndarray) -> None:
    """The image (RGB) with its map's overlay composited on it, as a PNG."""
    height, width = image.shape[:2]
    bgra = overlay_rgba(mask, width, height)
    alpha = bgra[..., 3:].astype(np.float32) / 255.0
    blended = image[..., ::-1].astype(np.float32) * (1 - alpha) + bgra[..., :3].astype(np.float32) * alpha
    if not cv2.imwrite(str(path), np.rint(blended).astype(np.uint8)):
        raise OSError(f"cannot write the heatmap overlay {path}: check that its folder is writable")
