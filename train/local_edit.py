"""Local AI edits inside leave-one-photo-source-out: photos with an AI-generated region, and the model's evidence.

For each seed and each photo of the starter set, one *edited* copy and one *control*: the edit pastes a region of
an AI image from the generator families dealt to the photo's own outer fold (so the held-out source is edited
only with held-out families) -- a blob, box or polygon of 5-40 % of the image, copied (`none`), feathered,
Poisson-cloned or colour-matched to its surroundings and feathered (an inpainting-style fill) -- then both copies
get the same phone/web processing: a resize to 60-100 %, half of the time a tone curve or denoise + sharpening,
and a JPEG re-encode at quality 70-92. The control is the photo processed alike without the edit, so the
comparison is edit vs. no edit, not processed vs. published.

The same edits, drawn from a fold's own training photos and families, are training samples for the heads
(``data.GammaDataset``'s ``local_edit_share``); the processed controls are its hard negatives.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..files import atomic_path
from ..images import load_rgb
from .manipulate import MASK_SHAPES, ai_patch_splice, random_mask
from .photoaug import denoise_sharpen, tone_map
from .sources import ImageRecord

EDIT_AREA = (0.05, 0.40)
EDIT_BLENDS = ("none", "feather", "poisson", "matched")
_INDEX_FIELDS = ("edit", "control", "mask", "photo", "donor", "kind", "area")


@dataclass(frozen=True)
class Edit:
    edit: Path       # the edited photo after processing (JPEG)
    control: Path    # the same photo, processed alike, unedited
    mask: Path       # PNG, 255 inside the pasted region, at the processed size
    photo: str       # file name of the starter photo
    donor: str       # file name of the AI image the region came from
    kind: str        # "<shape>:<blend>"
    area: float      # share of the image the region covers


def colour_matched(donor: np.ndarray, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``donor`` with each channel's mean and spread moved to those of the image's pixels around ``mask`` (what a
    generative fill does: new content that matches its surroundings)."""
    ring = cv2.dilate(mask, np.ones((15, 15), np.uint8)).astype(bool) & ~mask.astype(bool)
    near = image[ring] if ring.any() else image.reshape(-1, 3)
    d = donor.reshape(-1, 3).astype(np.float32)
    out = (d - d.mean(0)) / (d.std(0) + 1e-6) * near.std(0) + near.mean(0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(donor.shape)


def local_edit(photo: np.ndarray, donor: np.ndarray, rng: np.random.Generator,
               area: tuple[float, float] = EDIT_AREA) -> tuple[np.ndarray, np.ndarray, str]:
    """(edited image, {0,1} mask, kind) of one AI-region edit of ``photo``."""
    shape = MASK_SHAPES[int(rng.integers(len(MASK_SHAPES)))]
    blend = EDIT_BLENDS[int(rng.integers(len(EDIT_BLENDS)))]
    mask = random_mask(*photo.shape[:2], rng, shape, area=area, limits=(area[0] * 0.8, area[1] * 1.1))
    if blend == "matched":
        donor, blend_used = colour_matched(donor, photo, mask), "feather"
    else:
        blend_used = blend
    result = ai_patch_splice(photo, donor, rng, blend_used, mask)
    return result.image, result.mask, f"{shape}:{blend}"


def process_alike(images: Sequence[np.ndarray], mask: np.ndarray, rng: np.random.Generator
                  ) -> tuple[list[np.ndarray], np.ndarray, int]:
    """The same phone/web processing for every image (edit and control): resize, maybe a look, JPEG quality."""
    h, w = mask.shape
    scale = float(rng.uniform(0.6, 1.0))
    size = (max(64, round(w * scale)), max(64, round(h * scale)))
    look = [None, tone_map, denoise_sharpen][int(rng.integers(3))] if rng.random() < 0.5 else None
    look_seed = int(rng.integers(2**31))
    quality = int(rng.integers(70, 93))
    out = []
    for image in images:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if look is not None:
            image = look(image, np.random.default_rng(look_seed))
        out.append(image)
    return out, cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST), quality


def build_edits(photos: Sequence[ImageRecord], donors: Sequence[Sequence[ImageRecord]], out_dir: str | Path,
                seed: int, progress: bool = True) -> list[Edit]:
    """One edit and one control per photo (``donors[i]``: the AI images photo i may take its region from);
    resumable: a finished pair is never redone. Writes ``index.csv``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = _read_index(out_dir)
    edits = []
    for photo, pool in tqdm(list(zip(photos, donors)), desc=f"local edits seed {seed}", disable=not progress):
        if not pool:
            raise ValueError(f"no AI image to edit {photo.path.name} with: its fold holds no generator family")
        rng = np.random.default_rng([seed, zlib.crc32(photo.path.name.encode())])
        donor = pool[int(rng.integers(len(pool)))]
        stem = Path(photo.path.name).stem
        files = [out_dir / f"{stem}.edit.jpg", out_dir / f"{stem}.control.jpg", out_dir / f"{stem}.mask.png"]
        previous = done.get(photo.path.name)
        if previous is not None and previous.donor == donor.path.name and all(f.exists() for f in files):
            edits.append(previous)
            continue
        image = load_rgb(photo.path)
        edited, mask, kind = local_edit(image, load_rgb(donor.path), rng)
        (edited, control), mask, quality = process_alike([edited, image], mask, rng)
        for file, array in zip(files[:2], (edited, control)):
            with atomic_path(file, ".tmp.jpg") as tmp:
                cv2.imwrite(str(tmp), array[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        with atomic_path(files[2], ".tmp.png") as tmp:
            cv2.imwrite(str(tmp), mask * 255)
        edits.append(Edit(*files, photo.path.name, donor.path.name, kind, round(float(mask.mean()), 4)))
    with atomic_path(out_dir / "index.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_INDEX_FIELDS)
        writer.writerows([[e.edit.name, e.control.name, e.mask.name, e.photo, e.donor, e.kind, f"{e.area:.4f}"]
                          for e in edits])
    return edits


def _read_index(out_dir: Path) -> dict[str, Edit]:
    """The edits an earlier run listed, by photo (a finished edit is read back, not redrawn)."""
    index = out_dir / "index.csv"
    if not index.is_file():
        return {}
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["photo"]: Edit(out_dir / r["edit"], out_dir / r["control"], out_dir / r["mask"], r["photo"], r["donor"],
                             r["kind"], float(r["area"])) for r in rows}
