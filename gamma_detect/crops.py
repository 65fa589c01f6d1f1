"""The crop policy: how an image of any size becomes fixed-size network views.

Defined once, saved in the model manifest, and used by training (to score
out-of-fold images for calibration) and by every runtime, so that calibrated
probabilities mean the same thing everywhere. Pure numpy + OpenCV: no torch.

Policy: the image is scored near its own resolution. It is rescaled only when
needed (upscaled when the short side is below the input size, downscaled when
the short side exceeds ``work_side``, never by less than ``min_scale``), then
tiled by an evenly spaced grid of at most ``max_grid`` x ``max_grid`` crops,
plus one global view (the centre square resized to the input size). Crop
logits are averaged; crop masks are stitched back at image resolution, with
the global view's mask filling what the grid does not cover (its mean outside
the centre square, for very large or elongated images).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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
    height: int                      # original image size
    width: int
    scale: float                     # resize factor applied before tiling
    boxes: list[tuple[int, int]]     # (top, left) of each grid crop, in rescaled coordinates
    global_box: tuple[int, int, int]  # (top, left, side) of the centre square, in original coordinates

    @property
    def views(self) -> int:
        return len(self.boxes) + 1


@dataclass(frozen=True)
class CropPolicy:
    input_size: int = 224
    max_grid: int = 3
    work_side: int = 672
    min_scale: float = 0.5
    min_side: int = 64

    def to_dict(self) -> dict:
        return {"name": "grid+global", "combine": "mean_logit", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "CropPolicy":
        return cls(**{k: data[k] for k in ("input_size", "max_grid", "work_side", "min_scale", "min_side")})

    def scale_for(self, height: int, width: int) -> float:
        short = min(height, width)
        if short < self.min_side:
            raise ImageTooSmall(f"image is {width}x{height}; the short side must be at least {self.min_side} px")
        if short < self.input_size:
            return self.input_size / short
        if short > self.work_side:
            return max(self.min_scale, self.work_side / short)
        return 1.0

    def plan(self, height: int, width: int) -> CropPlan:
        scale = self.scale_for(height, width)
        h, w = self._scaled(height, width, scale)
        s = self.input_size
        ys = _positions(h, s, self.max_grid)
        xs = _positions(w, s, self.max_grid)
        side = min(height, width)
        return CropPlan(height, width, scale, [(y, x) for y in ys for x in xs],
                        ((height - side) // 2, (width - side) // 2, side))

    def views(self, image: np.ndarray) -> tuple[np.ndarray, CropPlan]:
        """All views of one HxWx3 uint8 image: (N, S, S, 3) uint8 and the plan."""
        plan = self.plan(*image.shape[:2])
        s = self.input_size
        h, w = self._scaled(plan.height, plan.width, plan.scale)
        scaled = resize(image, w, h)
        views = [scaled[y:y + s, x:x + s] for y, x in plan.boxes]
        top, left, side = plan.global_box
        views.append(resize(image[top:top + side, left:left + side], s, s))
        return np.stack(views), plan

    def stitch(self, view_maps: np.ndarray, plan: CropPlan) -> np.ndarray:
        """Put per-view maps (N, M, M[, C]) back at image resolution (H, W[, C]), float32. Maps coarser than
        the views (a network's stride-8 output) are first upsampled to the view size, bilinearly."""
        s = self.input_size
        extra = view_maps.shape[3:]
        if view_maps.shape[1:3] != (s, s):
            view_maps = np.stack([resize(np.ascontiguousarray(m, np.float32), s, s).reshape(s, s, *extra)
                                  for m in view_maps])
        h, w = self._scaled(plan.height, plan.width, plan.scale)
        total = np.zeros((h, w, *extra), np.float32)
        count = np.zeros((h, w) + (1,) * len(extra), np.float32)
        for (y, x), m in zip(plan.boxes, view_maps[:-1]):
            total[y:y + s, x:x + s] += m
            count[y:y + s, x:x + s] += 1
        top, left, side = plan.global_box
        # Where no grid crop reaches, the global view's map stands in: its own pixels inside the
        # centre square, its mean (the image-level estimate) outside it.
        global_map = np.empty((h, w, *extra), np.float32)
        global_map[...] = view_maps[-1].astype(np.float32).mean(axis=(0, 1))
        gt, gl, gs = (round(v * plan.scale) for v in (top, left, side))
        gs = min(gs, h - gt, w - gl)
        global_map[gt:gt + gs, gl:gl + gs] = resize(view_maps[-1].astype(np.float32), gs, gs).reshape(gs, gs, *extra)
        covered = count > 0
        stitched = np.where(covered, total / np.maximum(count, 1), global_map)
        return resize(stitched, plan.width, plan.height).reshape(plan.height, plan.width, *extra)

    @staticmethod
    def _scaled(height: int, width: int, scale: float) -> tuple[int, int]:
        return max(1, round(height * scale)), max(1, round(width * scale))


def _positions(length: int, size: int, max_count: int) -> list[int]:
    if length <= size:
        return [0]
    count = min(max_count, math.ceil(length / size))
    return [round(i * (length - size) / (count - 1)) for i in range(count)] if count > 1 else [(length - size) // 2]
