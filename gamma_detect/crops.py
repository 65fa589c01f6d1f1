"""The crop policy: how an image of any size becomes fixed-size network views.

Defined once, saved in the model manifest, and used by training (to score
out-of-fold images for calibration) and by every runtime, so that calibrated
probabilities mean the same thing everywhere. Pure numpy + OpenCV: no torch.

Policy: the image is scored near its own resolution. It is rescaled only when
needed (upscaled when the short side is below the input size, downscaled when
the short side exceeds ``work_side``, never by less than ``min_scale``, and to
at most ``work_pixels`` pixels when that budget is set), then tiled by an evenly
spaced grid of at most ``max_grid`` x ``max_grid`` crops, plus one global view
(the centre square resized to the input size). Crop logits are averaged.

Adaptive (staged) policy, when ``coarse_grid`` is set: stage 0 is the global
view plus a ``coarse_grid`` x ``coarse_grid`` grid (0: the global view alone);
the rest of the fine grid (stage 1) runs only when the stage-0 decision falls in
one of ``refine_bands`` (band edges from the manifest) or when detail (a heatmap)
is asked for. A manifest without these fields is scored in one stage, as before.

Maps are stitched back at the working resolution with feathered weights: each grid crop's weight falls
smoothly to 0 towards its edges inside the image, where the global view's map
(carried outward past its square) takes over, so views that disagree blend
without a step at crop borders.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Sequence

import cv2
import numpy as np


class ImageTooSmall(ValueError):
    code = "image_too_small"


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The one resize used by training and inference (area when shrinking)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


@dataclass(frozen=True)
class CropPlan:
    height: int                      # size of the image array the views are cut from (stitch returns this size)
    width: int
    scale: float                     # resize factor from the array to the working resolution
    boxes: list[tuple[int, int]]     # (top, left) of each grid crop at working resolution, stage-0 crops first
    global_box: tuple[int, int, int]  # (top, left, side) of the centre square, in array coordinates
    first: int | None = None         # grid crops in stage 0 (None: all of them, one stage)
    work: tuple[int, int] | None = None  # working (height, width); None: the array's size times scale

    @property
    def views(self) -> int:
        """Views of every stage."""
        return len(self.boxes) + 1

    @property
    def first_views(self) -> int:
        """Views of stage 0 (its grid crops and the global view)."""
        return len(self.boxes[:self.first]) + 1

    @property
    def working(self) -> tuple[int, int]:
        return self.work or CropPolicy._scaled(self.height, self.width, self.scale)


@dataclass(frozen=True)
class CropPolicy:
    input_size: int = 224
    max_grid: int = 3
    work_side: int = 672
    min_scale: float = 0.5
    min_side: int = 64
    coarse_grid: int | None = None        # stage-0 grid (0: global view only); None: one stage, every view
    refine_bands: tuple[str, ...] = ()    # verdict bands of the stage-0 decision that run the rest of the grid
    work_pixels: int = 0                  # pixel budget of the working image (0: none); never below input_size
    feather: int = 32                     # px over which a grid crop's stitching weight falls off at its edges

    def to_dict(self) -> dict:
        data = asdict(self)
        data["refine_bands"] = list(self.refine_bands)
        return {"name": "staged" if self.staged else "grid+global", "combine": "mean_logit", **data}

    @classmethod
    def from_dict(cls, data: dict) -> "CropPolicy":
        """Known fields only; fields a manifest lacks keep their defaults (an older manifest scores as before)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if "refine_bands" in values:
            values["refine_bands"] = tuple(values["refine_bands"])
        return cls(**values)

    @property
    def staged(self) -> bool:
        return self.coarse_grid is not None

    def scale_for(self, height: int, width: int) -> float:
        short = min(height, width)
        if short < self.min_side:
            raise ImageTooSmall(f"image is {width}x{height}; the short side must be at least {self.min_side} px")
        if short < self.input_size:
            return self.input_size / short
        scale = max(self.min_scale, self.work_side / short) if short > self.work_side else 1.0
        if self.work_pixels and height * width * scale * scale > self.work_pixels:
            scale = max(math.sqrt(self.work_pixels / (height * width)), self.input_size / short)
        return scale

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the views are cut at, for an image of this native size. A decoder may hand the
        policy any reduction of the image down to this size (e.g. JPEG DCT scaling) with ``native`` set."""
        return self._scaled(height, width, self.scale_for(height, width))

    def plan(self, height: int, width: int, native: tuple[int, int] | None = None) -> CropPlan:
        """The crops of an image array of height x width; ``native`` is the image's own (height, width) when
        the array was already reduced by the decoder (the working resolution follows the native size)."""
        nh, nw = native or (height, width)
        h, w = self.working_size(nh, nw)
        if min(height, width) < self.min_side:
            raise ImageTooSmall(f"image is {width}x{height}; the short side must be at least {self.min_side} px")
        s = self.input_size
        boxes = [(y, x) for y in _positions(h, s, self.max_grid) for x in _positions(w, s, self.max_grid)]
        first = None
        if self.staged:
            coarse = [(y, x) for y in _positions(h, s, self.coarse_grid) for x in _positions(w, s, self.coarse_grid)]
            coarse = coarse if self.coarse_grid else []
            boxes = coarse + [b for b in boxes if b not in coarse]
            first = len(coarse)
        side = min(height, width)
        return CropPlan(height, width, h / height, boxes, ((height - side) // 2, (width - side) // 2, side),
                        first, (h, w))

    def tile(self, image: np.ndarray, native: tuple[int, int] | None = None) -> "Tiles":
        """The image rescaled once to its working resolution, to cut each stage's views from."""
        plan = self.plan(*image.shape[:2], native=native)
        h, w = plan.working
        return Tiles(self, plan, image, resize(image, w, h))

    def views(self, image: np.ndarray, native: tuple[int, int] | None = None) -> tuple[np.ndarray, CropPlan]:
        """All views of one HxWx3 uint8 image (every stage): (N, S, S, 3) uint8 and the plan."""
        tiles = self.tile(image, native)
        return tiles.views(), tiles.plan

    def refines(self, probability: float, bands: Sequence[dict]) -> bool:
        """Whether a stage-0 (calibrated, combined) probability calls for the rest of the grid."""
        if not self.staged:
            return False
        from .verdict import verdict   # the manifest's band edges, read by the one verdict rule

        return verdict(probability, bands) in self.refine_bands

    def stitch(self, view_maps: np.ndarray, plan: CropPlan, max_side: int | None = None) -> np.ndarray:
        """Per-view maps (N, M, M[, C]) in view order (stage-0 crops, global view, stage-1 crops; N is either
        stage 0's count or every view) back at the working resolution (``plan.working``: the scale the views
        were cut at, so no detail is lost), float32; ``max_side`` shrinks it to that long side (for statistics
        that need no fine map). Maps coarser than the views (a network's stride-8 output) are upsampled
        bilinearly. Not at the image's own size: a 24 MP map would cost more than the views' inference, and a
        heatmap is stored at 512 px anyway (it is resized to the image when rendered)."""
        h, w = plan.working
        f = min(1.0, max_side / max(h, w)) if max_side else 1.0
        H, W = max(1, round(h * f)), max(1, round(w * f))
        s = max(1, min(round(self.input_size * f), H, W))
        extra = view_maps.shape[3:]
        maps = np.ascontiguousarray(view_maps, np.float32)
        first = len(plan.boxes[:plan.first])
        grid = list(maps[:first]) + list(maps[first + 1:])
        boxes = (plan.boxes[:first] + plan.boxes[first:])[:len(grid)]
        total = np.zeros((H, W, *extra), np.float32)
        weight = np.zeros((H, W), np.float32)
        feather = max(1.0, self.feather * f)
        for (y, x), m in zip(boxes, grid):
            y, x = min(round(y * f), H - s), min(round(x * f), W - s)
            wgt = np.outer(_ramp(s, y == 0, y + s >= H, feather), _ramp(s, x == 0, x + s >= W, feather))
            total[y:y + s, x:x + s] += _at(wgt, extra) * _resized(m, s, s, extra)
            weight[y:y + s, x:x + s] += wgt
        # Under the grid lies the global view: its own pixels inside the centre square, its edge pixels carried
        # outward beyond it (continuous, so gaps between far-apart crops show no block). The grid takes over
        # with its feathered weight, fully wherever a crop's interior reaches.
        top, left, side = plan.global_box
        gt, gl = round(top * plan.scale * f), round(left * plan.scale * f)
        gs = max(1, min(round(side * plan.scale * f), H - gt, W - gl))
        base = cv2.copyMakeBorder(_resized(maps[first], gs, gs, extra), gt, H - gt - gs, gl, W - gl - gs,
                                  cv2.BORDER_REPLICATE).reshape(H, W, *extra)
        share = _at(np.minimum(weight, 1.0), extra)
        return share * total / _at(np.maximum(weight, 1e-12), extra) + (1 - share) * base

    @staticmethod
    def _scaled(height: int, width: int, scale: float) -> tuple[int, int]:
        return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass(frozen=True)
class Tiles:
    """One image at its working resolution, with its plan: cuts the views of a stage (or of all stages)."""
    policy: CropPolicy
    plan: CropPlan
    image: np.ndarray     # as given (the global view is cut from it, at its full resolution)
    scaled: np.ndarray    # at the working resolution (the grid crops)

    def views(self, stage: int | None = None) -> np.ndarray:
        """(N, S, S, 3) uint8 views in stitching order: stage 0 (its crops, then the global view), stage 1
        (the remaining crops), or every stage (None)."""
        s = self.policy.input_size
        first = len(self.plan.boxes[:self.plan.first])
        crops = [self.scaled[y:y + s, x:x + s] for y, x in self.plan.boxes]
        top, left, side = self.plan.global_box
        whole = [resize(self.image[top:top + side, left:left + side], s, s)] if stage != 1 else []
        picked = {None: crops[:first] + whole + crops[first:], 0: crops[:first] + whole, 1: crops[first:]}[stage]
        return np.stack(picked) if picked else np.empty((0, s, s, 3), np.uint8)


def _ramp(n: int, at_start: bool, at_end: bool, feather: float) -> np.ndarray:
    """Stitching weight along one side of a view: 1 inside, falling smoothly (smoothstep over ``feather`` px)
    to ~0 at an edge that lies inside the image, where another view or the global view takes over."""
    i = np.arange(n, dtype=np.float32) + 0.5
    distance = np.full(n, np.inf, np.float32)
    if not at_start:
        distance = np.minimum(distance, i)
    if not at_end:
        distance = np.minimum(distance, n - i)
    t = np.clip(distance / feather, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _at(weight: np.ndarray, extra: tuple) -> np.ndarray:
    return weight.reshape(weight.shape + (1,) * len(extra))


def _resized(m: np.ndarray, width: int, height: int, extra: tuple) -> np.ndarray:
    """``resize`` for maps of any channel count (OpenCV's resizes take at most 4: more go 4 at a time)."""
    if len(extra) == 1 and extra[0] > 4:
        return np.concatenate([resize(np.ascontiguousarray(m[..., c:c + 4]), width, height).reshape(height, width, -1)
                               for c in range(0, extra[0], 4)], axis=-1)
    return resize(m, width, height).reshape(height, width, *extra)


def _positions(length: int, size: int, max_count: int) -> list[int]:
    if length <= size:
        return [0]
    count = min(max_count, math.ceil(length / size))
    return [round(i * (length - size) / (count - 1)) for i in range(count)] if count > 1 else [(length - size) // 2]
