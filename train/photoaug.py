"""What phones and the web do to a picture, applied to whole images of either class.

A detector that sees only camera-fresh photos learns that smoothness, strong local
contrast, a blurred background or a small re-encoded copy mean "generated". These
operations put those traits on real photos (and, alike, on AI images, so no trait
separates the classes by itself). Each works on the whole image before the crop policy,
as the processing happened before the image reached us.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

Op = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def denoise_sharpen(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Phone pipelines: edge-preserving denoising, then an unsharp mask."""
    smooth = cv2.bilateralFilter(image, 5, float(rng.uniform(20, 60)), 5)
    blur = cv2.GaussianBlur(smooth, (0, 0), float(rng.uniform(1.0, 2.0)))
    return cv2.addWeighted(smooth, 1 + float(rng.uniform(0.3, 1.0)), blur, -float(rng.uniform(0.3, 1.0)), 0)


def tone_map(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A global tone curve (gamma and an S-curve) and a saturation boost, like a phone's default look."""
    x = np.arange(256, dtype=np.float32) / 255.0
    x = x ** float(rng.uniform(0.7, 1.3))
    strength = float(rng.uniform(0.0, 0.6))
    x = (1 - strength) * x + strength * (x * x * (3 - 2 * x))
    hsv = cv2.cvtColor(cv2.LUT(image, np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)), cv2.COLOR_RGB2HSV)
    boost = np.clip(np.arange(256) * float(rng.uniform(1.0, 1.4)) + 0.5, 0, 255).astype(np.uint8)
    hsv[..., 1] = cv2.LUT(hsv[..., 1], boost)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def local_contrast(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HDR-like local contrast: CLAHE on lightness."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    tiles = int(rng.integers(4, 12))
    clahe = cv2.createCLAHE(clipLimit=float(rng.uniform(1.5, 4.0)), tileGridSize=(tiles, tiles))
    lab[..., 0] = clahe.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def portrait_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Portrait mode: a sharp ellipse around a subject, a strongly blurred background, a soft edge.

    The background blur and the soft mask are computed at a quarter of the size and upsampled
    (a wide blur has no detail to lose; at full size it costs seconds on a camera photo).
    """
    h, w = image.shape[:2]
    small_w, small_h = max(8, w // 4), max(8, h // 4)
    mask = np.zeros((small_h, small_w), np.float32)
    centre = (int(small_w * rng.uniform(0.35, 0.65)), int(small_h * rng.uniform(0.35, 0.65)))
    axes = (int(small_w * rng.uniform(0.15, 0.35)), int(small_h * rng.uniform(0.2, 0.45)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(small_h, small_w) * 0.03)
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(small_h, small_w) * float(rng.uniform(0.008, 0.02)))
    background = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
    return (mask * image + (1 - mask) * background).astype(np.uint8)


def thumbnail(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A web thumbnail: the long side shrunk to 256-512 px, then lossy WebP or JPEG."""
    h, w = image.shape[:2]
    side = int(rng.integers(256, 513))
    scale = min(1.0, side / max(h, w))
    small = cv2.resize(image, (max(64, round(w * scale)), max(64, round(h * scale))), interpolation=cv2.INTER_AREA)
    return _encode(small, rng, (60, 90))


def screenshot(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A screenshot of a photo: rescaled onto a flat UI canvas with bars, saved losslessly."""
    h, w = image.shape[:2]
    scale = float(rng.uniform(0.5, 0.9))
    inner = cv2.resize(image, (max(32, round(w * scale)), max(32, round(h * scale))), interpolation=cv2.INTER_AREA)
    canvas = np.full((h, w, 3), int(rng.choice([18, 32, 240, 250])), np.uint8)
    bar = max(4, h // 14)
    canvas[:bar] = int(rng.integers(40, 220))
    top = min(h - inner.shape[0], bar + int(rng.integers(0, max(1, h - inner.shape[0] - bar))))
    left = (w - inner.shape[1]) // 2
    canvas[top:top + inner.shape[0], left:left + inner.shape[1]] = inner
    return canvas


def heavy_compression(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What messengers and social networks send: JPEG or WebP at quality 20-50."""
    return _encode(image, rng, (20, 50))


def _encode(image: np.ndarray, rng: np.random.Generator, quality: tuple[int, int]) -> np.ndarray:
    q = int(rng.integers(quality[0], quality[1] + 1))
    ext, flag = (".jpg", cv2.IMWRITE_JPEG_QUALITY) if rng.random() < 0.5 else (".webp", cv2.IMWRITE_WEBP_QUALITY)
    ok, data = cv2.imencode(ext, np.ascontiguousarray(image[:, :, ::-1]), [flag, q])
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])


OPS: dict[str, Op] = {
    "denoise_sharpen": denoise_sharpen, "tone_map": tone_map, "local_contrast": local_contrast,
    "portrait_blur": portrait_blur, "thumbnail": thumbnail, "screenshot": screenshot,
    "heavy_compression": heavy_compression,
}


def process_like_web(image: np.ndarray, rng: np.random.Generator, max_ops: int = 2) -> tuple[np.ndarray, list[str]]:
    """One to ``max_ops`` of the operations above, in random order; returns the image and their names."""
    names = list(rng.choice(sorted(OPS), size=int(rng.integers(1, max_ops + 1)), replace=False))
    for name in names:
        image = OPS[name](np.ascontiguousarray(image), rng)
    return np.ascontiguousarray(image), names

