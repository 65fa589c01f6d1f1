"""Test doubles for the service: a tiny stand-in Detector with the runtime's interface.

Select it with ``GAMMA_DETECTOR=stub_detector:make_detector`` and ``tests/`` on ``PYTHONPATH``
(tests, load tests of the service alone). It is deterministic: the probability is the image's mean brightness, the
mask its normalised grey level. ``GAMMA_STUB_DELAY_MS`` adds a per-image delay,
``GAMMA_STUB_DIGEST`` names the model digest (tests change it to simulate a model update), and
``GAMMA_STUB_MODEL_FILE`` names a file it loads as its "model": anything but :data:`STUB_MODEL` there (a model
file replaced by an unreadable one) fails the load as the runtime's digest check does.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass

import numpy as np

from gamma_detect.contract import VERDICTS
from gamma_detect.crops import CropPolicy, ImageTooSmall
from gamma_detect.verdict import verdict

BANDS = [{"name": name, "min": i / len(VERDICTS), "max": (i + 1) / len(VERDICTS)} for i, name in enumerate(VERDICTS)]


@dataclass
class StubPrediction:
    probability: float
    mask: np.ndarray
    source_shares: dict
    mask_fraction: float


class StubDetector:
    def __init__(self, digest: str = "stub0000", delay_ms: float = 0.0, min_side: int = 64):
        self.model_info = {"name": "stub", "version": "0", "digest": digest, "backend": "stub"}
        self.policy = CropPolicy(min_side=min_side)
        self.delay = delay_ms / 1000
        self.min_side = min_side
        self.calls: list[int] = []   # batch sizes seen
        self.natives: list = []      # per call: the native sizes it was given, and the arrays' sizes

    def predict(self, images, native=None):
        self.calls.append(len(images))
        self.natives.append((native, [image.shape[:2] for image in images]))
        out = []
        for image in images:
            if min(image.shape[:2]) < self.min_side:
                raise ImageTooSmall(f"image is {image.shape[1]}x{image.shape[0]}")
            if self.delay:
                time.sleep(self.delay)
            grey = image.astype(np.float32).mean(axis=2) / 255.0
            probability = float(grey.mean())
            fraction = float((grey > 0.5).mean())
            out.append(StubPrediction(probability, grey, {"diffusion": probability, "gan": 1 - probability}, fraction))
        return out

    def result(self, prediction) -> dict:
        return {"ai_probability": round(prediction.probability, 6),
                "verdict": verdict(prediction.probability, BANDS), "uncertain_reason": None,
                "mask_fraction": round(prediction.mask_fraction, 6),
                "sources": prediction.source_shares,
                "ai_content": {"extent": "whole_image" if verdict(prediction.probability, BANDS) in VERDICTS[3:]
                               else "none", "region": None}}


STUB_MODEL = b"stub model\n"


def make_detector(settings=None) -> StubDetector:
    path = os.environ.get("GAMMA_STUB_MODEL_FILE")
    if path and open(path, "rb").read() != STUB_MODEL:
        from gamma_detect.runtime.manifest import ManifestError

        raise ManifestError(f"refusing {path}: it is not the stub's model file")
    return StubDetector(os.environ.get("GAMMA_STUB_DIGEST", "stub0000"),
                        float(os.environ.get("GAMMA_STUB_DELAY_MS", "0")))


def image_bytes(width: int = 96, height: int = 80, fmt: str = "PNG", seed: int = 0, **save) -> bytes:
    """A small deterministic test image (different seeds give different bytes)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)),
                     np.full_like(x, (seed * 37) % 256)], axis=2).astype(np.int16)
    noise = rng.integers(-12, 12, size=base.shape)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **save)
    return buffer.getvalue()
