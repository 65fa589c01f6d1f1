"""Reading images into the one layout every part uses: HxWx3 uint8 RGB."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

# Image files every folder scan accepts (training folders, parity and benchmark images): what Pillow reads.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def to_rgb(image: Image.Image) -> np.ndarray:
    """EXIF orientation applied; palette, CMYK, 16-bit, grey and alpha images converted to RGB."""
    # In place: without an orientation to apply, the copying form returns a copy of the whole image (a
    # pixel copy per decode, 4% of a worker's time).
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping.
        array = np.asarray(image, dtype=np.float64)
        array = np.clip(array / max(array.max(), 1) * 255, 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white, as a browser shows a transparent image on a page.
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as shown, after EXIF orientation."""
    width, height = image.size
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def draft(image: Image.Image, work: Callable[[int, int], tuple[int, int]]) -> None:
    """Before loading: let a JPEG decode at the largest DCT reduction (1/2, 1/4, 1/8) that is not smaller than
    ``work(height, width)`` of its shown size (e.g. ``CropPolicy.working_size``); other formats decode whole."""
    if image.format not in ("JPEG", "MPO"):
        return
    width, height = oriented_size(image)
    needed_h, needed_w = work(height, width)
    if (width, height) != image.size:   # EXIF turns it by 90 degrees: ask in stored order
        needed_h, needed_w = needed_w, needed_h
    image.draft(image.mode, (needed_w, needed_h))


def load_rgb(source: str | Path | bytes) -> np.ndarray:
    """Decode a file path or bytes (first frame of animations)."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        image.seek(0)
        image.load()
        return to_rgb(image)


def load_rgb_reduced(source: str | Path | bytes,
                     work: Callable[[int, int], tuple[int, int]]) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode for scoring, as the server does: a JPEG at the largest DCT reduction not below ``work`` (see
    :func:`draft`). The array and the image's own (height, width), for ``Detector.predict(native=...)``."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        image.seek(0)
        width, height = oriented_size(image)
        draft(image, work)
        image.load()
        return to_rgb(image), (height, width)
