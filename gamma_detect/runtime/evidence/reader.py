"""read_evidence: every provenance signal of one file's original bytes, each failure confined to its own item."""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image

from ...images import to_rgb
from . import c2pa, exif, generators, watermark, xmp
from .config import EvidenceConfig
from .container import check_png_text, mime_type
from .items import Evidence, EvidenceError

# What an unexpected exception inside a third-party parser is reported as, by source.
FALLBACK_CODES = {"c2pa": "c2pa_failed", "watermark": "watermark_failed"}


def _guarded(source: str, read: Callable[[], list[Evidence]]) -> list[Evidence]:
    try:
        return read()
    except EvidenceError as exc:
        return [Evidence.failed(source, exc)]
    except Exception as exc:   # hostile bytes can break any parser: that item fails, the others still run
        code = FALLBACK_CODES.get(source, "metadata_unreadable")
        return [Evidence.failed(source, EvidenceError(code, f"{source} could not be read ({type(exc).__name__})"))]


def _metadata(data: bytes, mime: str | None, config: EvidenceConfig) -> list[Evidence]:
    """XMP, EXIF and generator parameters, from Pillow's header parse (no pixel is decoded)."""
    if mime == "image/png":
        try:
            check_png_text(data, config)
        except EvidenceError as exc:
            return [Evidence.failed("metadata", exc)]
    try:
        image = Image.open(io.BytesIO(data))
    except Exception as exc:
        return [Evidence.failed("metadata", EvidenceError(
            "metadata_unreadable", f"the file's header could not be read ({type(exc).__name__})"))]
    with image:
        packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
        return (_guarded("xmp", lambda: xmp.read(packet, config) if packet else [])
                + _guarded("exif", lambda: exif.read(image))
                + _guarded("generator_parameters", lambda: generators.read(image)))


def _pixels(data: bytes, config: EvidenceConfig) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        if image.width * image.height > config.watermark_max_pixels:
            raise EvidenceError("watermark_failed", f"{image.width}x{image.height} px is over the watermark "
                                f"check's {config.watermark_max_pixels}-pixel limit")
        image.seek(0)
        return to_rgb(image)


def reusable_pixels(rgb: np.ndarray, native: tuple[int, int], config: EvidenceConfig) -> np.ndarray | None:
    """``rgb`` when the watermark check may use it instead of decoding the file again: decoded at the image's own
    size (``native``, (height, width); a DCT-reduced JPEG is not) and within the check's pixel limit. None makes
    the reader decode the file itself, and refuse it there when it is over the limit."""
    full = rgb.shape[:2] == tuple(native)
    return rgb if full and native[0] * native[1] <= config.watermark_max_pixels else None


def read_evidence(data: bytes, config: EvidenceConfig | None = None,
                  rgb: np.ndarray | None = None) -> list[Evidence]:
    """The evidence in a file's original bytes (before any decode or re-encode: metadata is part of it).

    ``rgb``: the same file already decoded at full resolution (HxWx3 uint8), to spare a second
    decode for the watermark check. ``config`` defaults to ``EvidenceConfig.from_env()``.
    """
    config = config or EvidenceConfig.from_env()
    if len(data) > config.max_bytes:
        return [Evidence.failed("file", EvidenceError(
            "file_too_large", f"{len(data)} bytes is over the evidence reader's {config.max_bytes}-byte limit"))]
    mime = mime_type(data)
    return (_guarded("c2pa", lambda: c2pa.read(data, mime, config))
            + _metadata(data, mime, config)
            + _guarded("watermark", lambda: watermark.read(rgb if rgb is not None else _pixels(data, config))))
