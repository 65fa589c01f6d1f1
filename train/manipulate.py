"""Turn real photos into manipulated training samples with exact pixel masks.

Every manipulation returns a :class:`Manipulated` whose ``mask`` is exactly the set of
pixels the operation was allowed to change: the edited result is always composited
back into the input inside the mask only, so every pixel outside it is bit-identical
to the input. ``sources`` labels the masked pixels with the class id (an index into
:data:`SOURCE_CLASSES`) of where their content came from.

Manipulation names (also the ``kind`` of the result) are ``inpaint:<method>``,
``copy_move``, ``splice:<blend>`` (region of another real photo) and
``ai_patch:<blend>`` (region of an AI image). Fast ones run on the fly through
:func:`manipulate`; slow ones (biharmonic and PatchMatch inpainting, Poisson blending)
can be precomputed once with :func:`build_bank` and read back with :func:`load_bank`
and :func:`load_bank_item`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps
from skimage.restoration import inpaint_biharmonic
from tqdm import tqdm

from ..contract import SOURCE_CLASSES
from ..files import atomic_path

INPAINT_METHODS = ("telea", "navier_stokes", "biharmonic", "patchmatch")
BLENDS = ("feather", "poisson", "none")
MASK_SHAPES = ("blob", "box", "polygon")
MANIPULATIONS = (
    *(f"inpaint:{m}" for m in INPAINT_METHODS),
    "copy_move",
    *(f"splice:{b}" for b in BLENDS),
    *(f"ai_patch:{b}" for b in BLENDS),
)
# Per 400x300 image on one CPU core: PatchMatch ~1 s, biharmonic ~0.2 s (both several
# seconds at 1024 px); every other manipulation takes ~2-20 ms.
SLOW_MANIPULATIONS = ("inpaint:biharmonic", "inpaint:patchmatch")
DEFAULT_METHODS = tuple(m for m in MANIPULATIONS if m not in SLOW_MANIPULATIONS)
BANK_METHODS = (*SLOW_MANIPULATIONS, "splice:poisson", "ai_patch:poisson")

MIN_AREA, MAX_AREA = 0.02, 0.30
MIN_SIDE = 16
_FAMILY_CLASS = {
    "inpaint": SOURCE_CLASSES.index("inpainted"),
    "copy_move": SOURCE_CLASSES.index("copy_moved"),
    "splice": SOURCE_CLASSES.index("spliced"),
    "ai_patch": SOURCE_CLASSES.index("generated"),
}
_PATCHMATCH_PATCH_SIZE = 5
_INDEX_FIELDS = ("image", "sources", "kind", "real_path", "donor_path")


@dataclass
class Manipulated:
    """A manipulated image with its per-pixel labels."""

    image: np.ndarray  # HxWx3 uint8 RGB
    mask: np.ndarray  # HxW uint8 in {0,1}: 1 = pixel not authentic
    sources: np.ndarray  # HxW uint8 class ids into SOURCE_CLASSES, 0 where mask == 0
    kind: str  # the manipulation name, e.g. "inpaint:telea", "copy_move", "splice:poisson"


@dataclass(frozen=True)
class BankItem:
    """One precomputed manipulation of a bank: its files and provenance."""

    image: Path  # lossless RGB PNG
    sources: Path  # grayscale PNG of class ids; the mask is sources > 0
    kind: str
    real_path: Path  # the real photo that was manipulated
    donor_path: Path | None  # the spliced photo or AI image, if any


def random_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    shape: str | None = None,
    area: tuple[float, float] = (0.03, 0.25),
    limits: tuple[float, float] = (MIN_AREA, MAX_AREA),
) -> np.ndarray:
    """A random HxW {0,1} uint8 region covering ``limits`` (default 2-30 %) of the image.

    ``shape`` is "blob" (thresholded smooth noise), "box" or "polygon"; None picks one.
    ``area`` is the range the target share is drawn from (shapes land near it, within ``limits``).
    """
    if shape is not None and shape not in MASK_SHAPES:
        raise ValueError(f"unknown mask shape {shape!r}; expected one of {MASK_SHAPES}")
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"image must be at least {MIN_SIDE} px per side, got {height}x{width}")
    for _ in range(100):
        kind = shape or MASK_SHAPES[rng.integers(len(MASK_SHAPES))]
        target = rng.uniform(*area)
        if kind == "blob":
            mask = _blob(height, width, target, rng)
        elif kind == "box":
            mask = _box(height, width, target, rng)
        else:
            mask = _polygon(height, width, target, rng)
        if limits[0] <= mask.mean() <= limits[1]:
            return mask
    raise RuntimeError(f"could not draw a {shape or 'random'} mask for a {height}x{width} image")


def _blob(height: int, width: int, area: float, rng: np.random.Generator) -> np.ndarray:
    grid = rng.random((int(rng.integers(3, 8)), int(rng.integers(3, 8)))).astype(np.float32)
    noise = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return (noise > np.quantile(noise, 1.0 - area)).astype(np.uint8)


def _box(height: int, width: int, area: float, rng: np.random.Generator) -> np.ndarray:
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    pixels = area * height * width
    bh = int(np.clip(round(np.sqrt(pixels * aspect)), 1, height))
    bw = int(np.clip(round(pixels / bh), 1, width))
    y, x = int(rng.integers(height - bh + 1)), int(rng.integers(width - bw + 1))
    mask = np.zeros((height, width), np.uint8)
    mask[y : y + bh, x : x + bw] = 1
    return mask


def _polygon(height: int, width: int, area: float, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(3, 11))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.5, 1.0, n)
    pts = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    x, y = pts[:, 0], pts[:, 1]
    unit_area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    pts *= np.sqrt(area * height * width / max(unit_area, 1e-6))
    pts -= pts.min(axis=0)
    span = pts.max(axis=0)
    room = np.maximum(np.array([width - 1, height - 1]) - span, 0)
    offset = rng.uniform(0, room)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(pts + offset).astype(np.int32)], 1)
    return mask


def inpaint(
    image: np.ndarray, mask: np.ndarray, method: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Fill the masked pixels of an RGB uint8 image; all other pixels stay unchanged.

    ``rng`` seeds PatchMatch's randomized search (seed 0 when None).
    """
    _check_image(image)
    _check_mask(mask, image.shape[:2])
    if method == "telea":
        filled = cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)
    elif method == "navier_stokes":
        filled = cv2.inpaint(image, mask, 3, cv2.INPAINT_NS)
    elif method == "biharmonic":
        out = inpaint_biharmonic(image, mask.astype(bool), split_into_regions=True, channel_axis=-1)
        filled = np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
    elif method == "patchmatch":
        filled = _patchmatch(image, mask, 0 if rng is None else int(rng.integers(2**32)))
    else:
        raise ValueError(f"unknown inpainting method {method!r}; expected one of {INPAINT_METHODS}")
    return _composite(image, filled, mask)


def _patchmatch(image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    try:
        import patchmatch
    except ImportError as e:
        raise RuntimeError(f"patchmatch inpainting needs the pypatchmatch package: {e}") from e
    if not patchmatch.patchmatch_available:
        raise RuntimeError(
            "patchmatch inpainting unavailable: pypatchmatch's native library failed to load"
        )
    # The seed is global state of the native library: set it on every call to be reproducible.
    patchmatch.set_random_seed(seed)
    return patchmatch.inpaint(image, mask, patch_size=_PATCHMATCH_PATCH_SIZE)


def copy_move(
    image: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None = None
) -> Manipulated:
    """Paste a region of the image over another place of the same image.

    ``mask`` is the destination region (random when None). The source region is the
    destination shifted by at least 10 % of the shorter side and, half of the time,
    rotated by up to 15 degrees and scaled by 0.9-1.1.
    """
    _check_image(image)
    if mask is not None:
        _check_mask(mask, image.shape[:2])
        if not mask.any():
            raise ValueError("copy_move needs a non-empty destination mask")
    height, width = image.shape[:2]
    for _ in range(100):
        dest = random_mask(height, width, rng) if mask is None else mask
        transform = _copy_transform(dest, rng)
        if transform is not None:
            moved = cv2.warpAffine(
                image,
                transform,
                (width, height),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT_101,
            )
            return _result(_composite(image, moved, dest), dest, "copy_move")
        if mask is not None:
            raise ValueError(
                "copy_move: the destination mask leaves no room for a distinct source region"
            )
    raise RuntimeError("copy_move: could not place a source region")


def _copy_transform(dest: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """The 2x3 affine map from destination to source pixel coordinates, or None if none fits."""
    height, width = dest.shape
    ys, xs = np.nonzero(dest)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    center = pts.mean(axis=0)
    angle, scale = 0.0, 1.0
    if rng.random() < 0.5:
        angle, scale = np.deg2rad(rng.uniform(-15, 15)), rng.uniform(0.9, 1.1)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (pts - center) @ linear.T + center
    lo = -src.min(axis=0)
    hi = np.array([width - 1, height - 1]) - src.max(axis=0)
    if np.any(lo > hi):
        return None
    min_shift = max(2.0, 0.1 * min(height, width))
    for _ in range(50):
        shift = rng.uniform(lo, hi)
        if np.hypot(*shift) >= min_shift:
            return np.hstack([linear, (center + shift - linear @ center)[:, None]])
    return None


def splice(
    image: np.ndarray, donor: np.ndarray, rng: np.random.Generator, blend: str = "feather"
) -> Manipulated:
    """Paste a random region of another real photo (class "spliced")."""
    return _paste(image, donor, rng, blend, "splice")


def ai_patch_splice(
    image: np.ndarray,
    ai_image: np.ndarray,
    rng: np.random.Generator,
    blend: str = "feather",
    mask: np.ndarray | None = None,
) -> Manipulated:
    """Paste a region of an AI-generated image (class "generated"); ``mask``: the region (random when None)."""
    return _paste(image, ai_image, rng, blend, "ai_patch", mask)


def _paste(
    image: np.ndarray,
    donor: np.ndarray,
    rng: np.random.Generator,
    blend: str,
    family: str,
    mask: np.ndarray | None = None,
) -> Manipulated:
    """Blend ``donor`` (scaled to cover the image, randomly cropped) into a random region.

    Blends: "none" copies the donor pixels; "feather" alpha-blends with an alpha that
    ramps from >0 on the region's edge to 1 at 2-8 px inside it and is 0 outside;
    "poisson" is cv2.seamlessClone (NORMAL_CLONE), which also alters pixels of the
    region's bounding box and never the image's outermost pixel ring: the region is drawn
    off the outer 2 px, cloned 1 px wider (so its own edge changes too) and the clone is
    kept inside the region only.
    """
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; expected one of {BLENDS}")
    _check_image(image)
    _check_image(donor, "donor")
    height, width = image.shape[:2]
    donor = _fit(donor, height, width, rng)
    if mask is None:
        mask = _region(height, width, rng, off_border=blend == "poisson")
    else:
        _check_mask(mask, (height, width))
        mask = mask.copy()
        if blend == "poisson":
            mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 0, 0, 0, 0
        if not mask.any():
            raise ValueError("the paste region is empty (off the image's outer 2 px for poisson blending)")
    if blend == "none":
        pasted = donor
    elif blend == "feather":
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
        alpha = np.clip(dist / rng.uniform(2.0, 8.0), 0.0, 1.0)[..., None]
        pasted = np.rint(alpha * donor + (1.0 - alpha) * image).astype(np.uint8)
    else:
        # Cloning a 1 px wider region makes the region's own edge pixels change too
        # (seamlessClone keeps the edge of its mask's bounding box fixed).
        clone_mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        x, y, w, h = cv2.boundingRect(clone_mask)
        # seamlessClone places the mask's bounding box at center - size // 2: back where it was.
        center = (x + w // 2, y + h // 2)
        pasted = cv2.seamlessClone(donor, image, clone_mask * 255, center, cv2.NORMAL_CLONE)
    return _result(_composite(image, pasted, mask), mask, f"{family}:{blend}")


def _region(height: int, width: int, rng: np.random.Generator, off_border: bool) -> np.ndarray:
    for _ in range(100):
        mask = random_mask(height, width, rng)
        if not off_border:
            return mask
        mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 0, 0, 0, 0
        if mask.mean() >= MIN_AREA:
            return mask
    raise RuntimeError(f"could not draw a region off the border of a {height}x{width} image")


def _fit(donor: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Scale ``donor`` to cover height x width, then crop a random window of that size."""
    dh, dw = donor.shape[:2]
    scale = max(height / dh, width / dw)
    if scale != 1.0:
        size = (max(width, round(dw * scale)), max(height, round(dh * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        donor = cv2.resize(donor, size, interpolation=interpolation)
    y = int(rng.integers(donor.shape[0] - height + 1))
    x = int(rng.integers(donor.shape[1] - width + 1))
    return np.ascontiguousarray(donor[y : y + height, x : x + width])


def manipulate(
    image: np.ndarray,
    rng: np.random.Generator,
    donors: Sequence[np.ndarray] = (),
    ai_donors: Sequence[np.ndarray] = (),
    methods: Sequence[str] | None = None,
) -> Manipulated:
    """Apply one random manipulation from ``methods`` (default :data:`DEFAULT_METHODS`).

    Splices need ``donors`` (real photos) and AI patches ``ai_donors``; methods lacking
    them are skipped. The family (inpaint, copy_move, splice, ai_patch) is drawn
    uniformly first, then a method within it, so the source classes stay balanced.
    """
    _check_image(image)
    method = _pick(_possible(methods, len(donors) > 0, len(ai_donors) > 0), rng)
    family, _, variant = method.partition(":")
    if family == "inpaint":
        mask = random_mask(*image.shape[:2], rng)
        return _result(inpaint(image, mask, variant, rng), mask, method)
    if family == "copy_move":
        return copy_move(image, rng)
    if family == "splice":
        return splice(image, donors[rng.integers(len(donors))], rng, variant)
    return ai_patch_splice(image, ai_donors[rng.integers(len(ai_donors))], rng, variant)


def _possible(methods: Sequence[str] | None, has_donors: bool, has_ai_donors: bool) -> list[str]:
    methods = DEFAULT_METHODS if methods is None else tuple(methods)
    unknown = [m for m in methods if m not in MANIPULATIONS]
    if unknown:
        raise ValueError(f"unknown manipulations {unknown}; expected names from {MANIPULATIONS}")
    if not methods:
        raise ValueError("no manipulation methods given")
    lacking = {"splice"} if not has_donors else set()
    if not has_ai_donors:
        lacking.add("ai_patch")
    possible = [m for m in methods if m.partition(":")[0] not in lacking]
    if not possible:
        raise ValueError(
            f"none of {list(methods)} is possible: splice:* needs donors (real photos), "
            "ai_patch:* needs ai_donors (AI-generated images)"
        )
    return possible


def _pick(methods: Sequence[str], rng: np.random.Generator) -> str:
    families = sorted({m.partition(":")[0] for m in methods})
    family = families[rng.integers(len(families))]
    members = [m for m in methods if m.partition(":")[0] == family]
    return members[rng.integers(len(members))]


def build_bank(
    real_paths: Sequence[Path],
    ai_paths: Sequence[Path],
    out_dir: Path,
    count: int,
    seed: int,
    methods: Sequence[str] = BANK_METHODS,
    progress: bool = True,
    max_side: int | None = 1024,
) -> Path:
    """Precompute ``count`` seeded manipulations of ``real_paths`` into ``out_dir``.

    Item i depends only on (seed, i) and the path lists, so re-running skips finished
    items and gives the same files. Writes ``<seed>_<i>.png`` (RGB) and
    ``<seed>_<i>_sources.png`` (class ids; mask = sources > 0), then ``index.csv``, and
    returns the index path. Photos larger than ``max_side`` are downscaled first.
    Splices need at least two real photos (the donor is another one).
    """
    if len(real_paths) == 0:
        raise ValueError("build_bank needs at least one real photo")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    possible = _possible(methods, len(real_paths) > 1, len(ai_paths) > 0)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in tqdm(range(count), desc="manipulation bank", disable=not progress):
        rng = np.random.default_rng([seed, i])
        method = _pick(possible, rng)
        real_index = int(rng.integers(len(real_paths)))
        real = Path(real_paths[real_index])
        donor = None
        if method.startswith("splice:"):
            others = [p for j, p in enumerate(real_paths) if j != real_index]
            donor = Path(others[rng.integers(len(others))])
        elif method.startswith("ai_patch:"):
            donor = Path(ai_paths[rng.integers(len(ai_paths))])
        name = f"{seed}_{i:06d}"
        image_file, sources_file = out_dir / f"{name}.png", out_dir / f"{name}_sources.png"
        if not (image_file.exists() and sources_file.exists()):
            image = _load_rgb(real, max_side)
            extra = [] if donor is None else [_load_rgb(donor, max_side)]
            if method.startswith("splice:"):
                result = manipulate(image, rng, donors=extra, methods=[method])
            else:
                result = manipulate(image, rng, ai_donors=extra, methods=[method])
            _save_png(result.image, image_file)
            _save_png(result.sources, sources_file)
        donor_field = "" if donor is None else str(donor)
        rows.append([image_file.name, sources_file.name, method, str(real), donor_field])
    index = out_dir / "index.csv"
    with atomic_path(index) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_INDEX_FIELDS)
        writer.writerows(rows)
    return index


def load_bank(bank_dir: Path) -> list[BankItem]:
    """The items listed in ``bank_dir/index.csv`` (written by :func:`build_bank`)."""
    bank_dir = Path(bank_dir)
    index = bank_dir / "index.csv"
    if not index.is_file():
        raise FileNotFoundError(
            f"no manipulation bank at {bank_dir}: {index} is missing (run build_bank)"
        )
    with open(index, newline="") as f:
        return [
            BankItem(
                image=bank_dir / row["image"],
                sources=bank_dir / row["sources"],
                kind=row["kind"],
                real_path=Path(row["real_path"]),
                donor_path=Path(row["donor_path"]) if row["donor_path"] else None,
            )
            for row in csv.DictReader(f)
        ]


def load_bank_item(item: BankItem) -> Manipulated:
    """Read one bank item back as a :class:`Manipulated`."""
    image = np.array(Image.open(item.image).convert("RGB"))
    sources = np.array(Image.open(item.sources).convert("L"))
    mask = (sources > 0).astype(np.uint8)
    return Manipulated(image=image, mask=mask, sources=sources, kind=item.kind)


def _load_rgb(path: Path, max_side: int | None) -> np.ndarray:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
    if max_side is not None and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.array(im)


def _save_png(array: np.ndarray, path: Path) -> None:
    # Written under a temporary name so an interrupted run never leaves a truncated file to skip.
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _check_image(image: np.ndarray, name: str = "image") -> None:
    shape, dtype = getattr(image, "shape", None), getattr(image, "dtype", type(image).__name__)
    if not (
        isinstance(image, np.ndarray) and image.ndim == 3 and shape[2] == 3 and dtype == np.uint8
    ):
        raise ValueError(
            f"{name} must be an HxWx3 uint8 RGB array, got shape {shape} and dtype {dtype}"
        )


def _check_mask(mask: np.ndarray, shape: tuple[int, int]) -> None:
    got_shape, got_dtype = getattr(mask, "shape", None), getattr(mask, "dtype", type(mask).__name__)
    if not (isinstance(mask, np.ndarray) and got_shape == shape and got_dtype == np.uint8):
        raise ValueError(
            f"mask must be a {shape[0]}x{shape[1]} uint8 array, "
            f"got shape {got_shape} and dtype {got_dtype}"
        )
    if mask.max(initial=0) > 1:
        raise ValueError("mask values must be 0 or 1")


def _composite(image: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask[..., None].astype(bool), edited, image)


def _result(image: np.ndarray, mask: np.ndarray, kind: str) -> Manipulated:
    sources = mask * np.uint8(_FAMILY_CLASS[kind.partition(":")[0]])
    return Manipulated(image=image, mask=mask.copy(), sources=sources.astype(np.uint8), kind=kind)
