"""Training samples: identical views and perturbations for every class.

Every image, AI or real, clean or manipulated, goes through the same steps:
a view sampled like the inference crop policy's (a near-native crop or the
global centre view), a random flip, then JPEG or WebP re-encoding at a random
quality, mild blur and noise. File format, size and aspect ratio therefore
never reach the network. Manipulations are applied to real views before the
perturbations, so their masks go through the same pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ..abstain import reencode_jpeg
from ..crops import CropPolicy, resize
from ..images import load_rgb
from .config import AugmentConfig
from .local_edit import local_edit, process_alike
from .manipulate import Manipulated, SOURCE_CLASSES, load_bank, load_bank_item, manipulate
from .sources import ImageRecord

GENERATED = SOURCE_CLASSES.index("generated")


@dataclass
class Sample:
    image: np.ndarray    # S x S x 3 uint8
    mask: np.ndarray     # S x S uint8, 1 = not authentic
    sources: np.ndarray  # S x S uint8 class ids
    label: int
    whole_ai: bool = False   # a whole AI image (its head-1 label is all ones)


def sample_view(image: np.ndarray, policy: CropPolicy, aug: AugmentConfig, rng: np.random.Generator,
                maps: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """One training view of an image (and the same geometry applied to its label maps)."""
    h, w = image.shape[:2]
    s = policy.input_size
    short = min(h, w)
    if rng.random() < aug.global_view_prob:
        side = short
        top, left = (h - side) // 2, (w - side) // 2
    else:
        scale = math.exp(rng.uniform(math.log(aug.min_scale), 0.0))
        side = min(short, max(8, round(s / scale)))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    view = resize(image[top:top + side, left:left + side], s, s)
    out_maps = [cv2.resize(m[top:top + side, left:left + side], (s, s), interpolation=cv2.INTER_NEAREST)
                for m in maps]
    if rng.random() < 0.5:
        view = view[:, ::-1]
        out_maps = [m[:, ::-1] for m in out_maps]
    return np.ascontiguousarray(view), [np.ascontiguousarray(m) for m in out_maps]


def perturb(view: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Semantics-preserving perturbations: re-encoding, blur, noise."""
    if rng.random() < aug.blur_prob:
        view = cv2.GaussianBlur(view, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < aug.noise_prob:
        noise = rng.normal(0, rng.uniform(1.0, 4.0), view.shape)
        view = np.clip(view.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < aug.reencode_prob:
        quality = int(rng.integers(aug.quality[0], aug.quality[1] + 1))
        if rng.random() < 0.5:
            ext, params = ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]
        else:
            ext, params = ".webp", [cv2.IMWRITE_WEBP_QUALITY, quality]
        ok, encoded = cv2.imencode(ext, view[:, :, ::-1], params)
        view = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(view)


def to_tensor(views: np.ndarray) -> torch.Tensor:
    """(N,S,S,3) or (S,S,3) uint8 -> float in [-1, 1], channels first."""
    t = torch.from_numpy(np.ascontiguousarray(views)).float().div_(127.5).sub_(1.0)
    return t.permute(0, 3, 1, 2) if t.ndim == 4 else t.permute(2, 0, 1)


class ImageCache:
    """Decoded images kept in memory: the starter set is small and decoding large photos is slow."""

    def __init__(self, paths: Sequence[Path], progress: bool = True):
        self._images = {p: load_rgb(p) for p in tqdm(paths, desc="decoding images", disable=not progress,
                                                   unit="img")}

    def __getitem__(self, path: Path) -> np.ndarray:
        return self._images[path]


class GammaDataset(Dataset):
    """One epoch: every record once, plus manipulated real photos (on the fly or from the bank).

    Sample ``i`` of epoch ``e`` is drawn from a generator seeded by (seed, e, i), so a
    resumed run sees exactly the samples it would have seen.
    """

    def __init__(self, records: Sequence[ImageRecord], policy: CropPolicy, aug: AugmentConfig, seed: int,
                 manipulation: bool = True, bank_dir: Path | None = None, cache: ImageCache | None = None,
                 progress: bool = True):
        self.records = list(records)
        self.policy, self.aug, self.seed = policy, aug, seed
        self.cache = cache or ImageCache([r.path for r in self.records], progress)
        self.real = [r for r in self.records if r.label == 0]
        self.ai = [r for r in self.records if r.label == 1]
        # Only bank items made from this split's images: no leak across folds.
        allowed = {r.path.resolve() for r in self.records}
        self.bank = ([b for b in load_bank(bank_dir) if b.real_path.resolve() in allowed
                      and (b.donor_path is None or b.donor_path.resolve() in allowed)]
                     if manipulation and bank_dir and Path(bank_dir).exists() else [])
        manipulated = round(len(self.real) * aug.manipulated_share) if manipulation and self.real else 0
        from_bank = min(len(self.bank), round(manipulated * aug.bank_share))
        self.items = ([("clean", i) for i in range(len(self.records))]
                      + [("bank", i) for i in range(from_bank)]
                      + [("manipulated", i) for i in range(manipulated - from_bank)]
                      + [("edit", i) for i in range(round(len(self.real) * aug.local_edit_share) if self.ai else 0)]
                      + [("processed", i) for i in range(round(len(self.real) * aug.processed_share))])
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def sample(self, index: int) -> Sample:
        kind, i = self.items[index]
        rng = self._rng(index)
        s = self.policy.input_size
        if kind == "clean":
            record = self.records[i]
            view, _ = sample_view(self.cache[record.path], self.policy, self.aug, rng)
            fill = GENERATED if record.label else 0
            sample = Sample(view, np.full((s, s), record.label, np.uint8), np.full((s, s), fill, np.uint8),
                            record.label, bool(record.label))
        elif kind == "bank":
            item = load_bank_item(self.bank[int(rng.integers(len(self.bank)))])
            view, (mask, sources) = sample_view(item.image, self.policy, self.aug, rng, [item.mask, item.sources])
            sample = Sample(view, mask, sources, int(mask.any()))
        elif kind in ("edit", "processed"):
            sample = self._processed_photo(rng, edit=kind == "edit")
        else:
            base = self._view_of(self.real, rng)
            donors = [self._view_of(self.real, rng)] if len(self.real) > 1 else []
            ai_donors = [self._view_of(self.ai, rng)] if self.ai else []
            result: Manipulated = manipulate(base, rng, donors=donors, ai_donors=ai_donors)
            sample = Sample(result.image, result.mask, result.sources, int(result.mask.any()))
        sample.image = perturb(sample.image, self.aug, rng)
        return sample

    def _processed_photo(self, rng: np.random.Generator, edit: bool) -> Sample:
        """A view of a whole photo, locally edited with a region of an AI image or not, then resized, maybe given a
        look and JPEG-encoded: the local-edit protocol's edits and controls, drawn from this split's images."""
        photo = self.cache[self.real[int(rng.integers(len(self.real)))].path]
        mask = np.zeros(photo.shape[:2], np.uint8)
        if edit:
            donor = self.cache[self.ai[int(rng.integers(len(self.ai)))].path]
            photo, mask, _ = local_edit(photo, donor, rng)
        (image,), mask, quality = process_alike([photo], mask, rng)
        view, (view_mask,) = sample_view(reencode_jpeg(image, quality), self.policy, self.aug, rng, [mask])
        return Sample(view, view_mask, view_mask * np.uint8(GENERATED), int(view_mask.any()))

    def _view_of(self, records: Sequence[ImageRecord], rng: np.random.Generator) -> np.ndarray:
        record = records[int(rng.integers(len(records)))]
        return sample_view(self.cache[record.path], self.policy, self.aug, rng)[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.sample(index)
        return {
            "image": to_tensor(sample.image),
            "label": torch.tensor(float(sample.label)),
            "mask": torch.from_numpy(sample.mask.astype(np.float32))[None],
            "sources": torch.from_numpy(sample.sources.astype(np.int64)),
            "whole_ai": torch.tensor(float(sample.whole_ai)),
        }
