import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from gamma_detect.train.manipulate import (
    BANK_METHODS,
    DEFAULT_METHODS,
    INPAINT_METHODS,
    MANIPULATIONS,
    SLOW_MANIPULATIONS,
    SOURCE_CLASSES,
    BankItem,
    Manipulated,
    ai_patch_splice,
    build_bank,
    copy_move,
    inpaint,
    load_bank,
    load_bank_item,
    manipulate,
    random_mask,
    splice,
)

try:
    import patchmatch

    PATCHMATCH_OK = patchmatch.patchmatch_available
except ImportError:
    PATCHMATCH_OK = False
needs_patchmatch = pytest.mark.skipif(
    not PATCHMATCH_OK, reason="pypatchmatch or its native library is not available"
)


def with_patchmatch_marked(names):
    return [pytest.param(n, marks=needs_patchmatch) if "patchmatch" in n else n for n in names]


CLASS_OF_FAMILY = {
    "inpaint": SOURCE_CLASSES.index("inpainted"),
    "copy_move": SOURCE_CLASSES.index("copy_moved"),
    "splice": SOURCE_CLASSES.index("spliced"),
    "ai_patch": SOURCE_CLASSES.index("generated"),
}


def textured(height: int, width: int, seed: int) -> np.ndarray:
    """Gradients and filled shapes under noise, so that every edit changes pixel values."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    diagonal = (xx + yy) * 127 / (height + width) + 60
    img = np.stack([xx * 255 / width, yy * 255 / height, diagonal], axis=-1)
    for _ in range(6):
        color = tuple(float(c) for c in rng.integers(0, 256, 3))
        center = (int(rng.integers(width)), int(rng.integers(height)))
        cv2.circle(img, center, int(rng.integers(5, 30)), color, -1)
    return np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)


IMAGE = textured(112, 144, 0)
DONOR = textured(90, 170, 1)  # other sizes than IMAGE: donors are scaled and cropped to fit
AI_IMAGE = textured(200, 100, 2)


def check_exact(result: Manipulated, original: np.ndarray, class_id: int) -> None:
    assert result.image.shape == original.shape and result.image.dtype == np.uint8
    assert result.mask.shape == original.shape[:2] and result.mask.dtype == np.uint8
    assert set(np.unique(result.mask)) <= {0, 1}
    outside = result.mask == 0
    np.testing.assert_array_equal(result.image[outside], original[outside])
    assert 0.02 <= result.mask.mean() <= 0.30
    changed = (result.image != original).any(axis=-1)
    assert changed[result.mask == 1].mean() > 0.85
    assert result.sources.dtype == np.uint8
    np.testing.assert_array_equal(result.sources, result.mask * class_id)


@pytest.mark.parametrize("shape", ["blob", "box", "polygon", None])
def test_random_mask_area_bounds(shape):
    for seed in range(60):
        mask = random_mask(96, 128, np.random.default_rng(seed), shape)
        assert mask.shape == (96, 128) and mask.dtype == np.uint8
        assert set(np.unique(mask)) == {0, 1}
        assert 0.02 <= mask.mean() <= 0.30


def test_random_mask_is_seeded():
    a = random_mask(64, 80, np.random.default_rng(7))
    b = random_mask(64, 80, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_random_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown mask shape"):
        random_mask(64, 64, np.random.default_rng(0), "star")
    with pytest.raises(ValueError, match="at least"):
        random_mask(8, 64, np.random.default_rng(0))


@pytest.mark.parametrize("method", with_patchmatch_marked(INPAINT_METHODS))
def test_inpaint_changes_only_masked_pixels(method):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        mask = random_mask(*IMAGE.shape[:2], rng)
        out = inpaint(IMAGE, mask, method, rng)
        assert out.shape == IMAGE.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out[mask == 0], IMAGE[mask == 0])
        assert (out != IMAGE).any(axis=-1)[mask == 1].mean() > 0.85


@pytest.mark.parametrize("method", with_patchmatch_marked(MANIPULATIONS))
def test_each_manipulation_is_exact(method):
    family = method.partition(":")[0]
    for seed in range(3):
        result = manipulate(IMAGE, np.random.default_rng(seed), [DONOR], [AI_IMAGE], [method])
        assert result.kind == method
        check_exact(result, IMAGE, CLASS_OF_FAMILY[family])


@pytest.mark.parametrize("method", with_patchmatch_marked(MANIPULATIONS))
def test_each_manipulation_is_seeded(method):
    a = manipulate(IMAGE, np.random.default_rng(11), [DONOR], [AI_IMAGE], [method])
    b = manipulate(IMAGE, np.random.default_rng(11), [DONOR], [AI_IMAGE], [method])
    assert a.kind == b.kind
    for name in ("image", "mask", "sources"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_direct_calls_label_their_class():
    rng = np.random.default_rng(3)
    check_exact(copy_move(IMAGE, rng), IMAGE, CLASS_OF_FAMILY["copy_move"])
    for blend in ("feather", "poisson", "none"):
        spliced = splice(IMAGE, DONOR, rng, blend)
        assert spliced.kind == f"splice:{blend}"
        check_exact(spliced, IMAGE, CLASS_OF_FAMILY["splice"])
        patched = ai_patch_splice(IMAGE, AI_IMAGE, rng, blend)
        assert patched.kind == f"ai_patch:{blend}"
        check_exact(patched, IMAGE, CLASS_OF_FAMILY["ai_patch"])


def test_copy_move_with_given_destination():
    dest = np.zeros(IMAGE.shape[:2], np.uint8)
    dest[20:50, 30:70] = 1
    result = copy_move(IMAGE, np.random.default_rng(0), mask=dest)
    np.testing.assert_array_equal(result.mask, dest)
    check_exact(result, IMAGE, CLASS_OF_FAMILY["copy_move"])


def test_copy_move_rejects_a_destination_without_room():
    full = np.ones(IMAGE.shape[:2], np.uint8)
    with pytest.raises(ValueError, match="no room"):
        copy_move(IMAGE, np.random.default_rng(0), mask=full)
    with pytest.raises(ValueError, match="non-empty"):
        copy_move(IMAGE, np.random.default_rng(0), mask=np.zeros(IMAGE.shape[:2], np.uint8))


def test_default_methods_pick_fast_possible_ones():
    kinds = {manipulate(IMAGE, np.random.default_rng(seed)).kind for seed in range(30)}
    assert kinds <= set(DEFAULT_METHODS) - set(SLOW_MANIPULATIONS)
    assert {k.partition(":")[0] for k in kinds} == {"inpaint", "copy_move"}  # no donors given
    rngs = [np.random.default_rng(seed) for seed in range(30)]
    kinds = {manipulate(IMAGE, rng, [DONOR], [AI_IMAGE]).kind for rng in rngs}
    assert {k.partition(":")[0] for k in kinds} == set(CLASS_OF_FAMILY)


def test_manipulate_rejects_bad_requests():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown manipulations"):
        manipulate(IMAGE, rng, methods=["inpaint:magic"])
    with pytest.raises(ValueError, match="no manipulation methods"):
        manipulate(IMAGE, rng, methods=[])
    with pytest.raises(ValueError, match="needs donors"):
        manipulate(IMAGE, rng, methods=["splice:feather"])
    with pytest.raises(ValueError, match="needs ai_donors"):
        manipulate(IMAGE, rng, donors=[DONOR], methods=["ai_patch:none"])
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        manipulate(IMAGE.astype(np.float32), rng)


def test_inpaint_and_blend_reject_bad_arguments():
    rng = np.random.default_rng(0)
    mask = random_mask(*IMAGE.shape[:2], rng)
    with pytest.raises(ValueError, match="unknown inpainting method.*telea"):
        inpaint(IMAGE, mask, "photoshop")
    with pytest.raises(ValueError, match="mask must be"):
        inpaint(IMAGE, mask[:-1], "telea")
    with pytest.raises(ValueError, match="0 or 1"):
        inpaint(IMAGE, mask * 255, "telea")
    with pytest.raises(ValueError, match="image must be"):
        inpaint(IMAGE[..., 0], mask, "telea")
    with pytest.raises(ValueError, match="unknown blend"):
        splice(IMAGE, DONOR, rng, "multiply")
    with pytest.raises(ValueError, match="donor must be"):
        ai_patch_splice(IMAGE, AI_IMAGE[..., :2], rng)


def test_patchmatch_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "patchmatch", None)  # makes `import patchmatch` fail
    mask = random_mask(*IMAGE.shape[:2], np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="pypatchmatch"):
        inpaint(IMAGE, mask, "patchmatch")


def write_images(folder, sizes, seed):
    folder.mkdir()
    paths = []
    for i, (h, w) in enumerate(sizes):
        path = folder / f"{i}.png"
        Image.fromarray(textured(h, w, seed + i)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def photos(tmp_path):
    real = write_images(tmp_path / "real", [(80, 96), (96, 72), (64, 64)], 10)
    ai = write_images(tmp_path / "ai", [(128, 128), (70, 90)], 20)
    return real, ai


@needs_patchmatch  # the default bank methods include PatchMatch inpainting
def test_bank_is_idempotent_and_round_trips(tmp_path, photos):
    real, ai = photos
    index = build_bank(real, ai, tmp_path / "bank", count=4, seed=2, progress=False)
    assert index == tmp_path / "bank" / "index.csv"
    items = load_bank(tmp_path / "bank")
    assert len(items) == 4 and all(isinstance(item, BankItem) for item in items)
    # seed 2 happens to draw all three families, so every kind of item is checked below
    assert {item.kind.partition(":")[0] for item in items} == {"inpaint", "splice", "ai_patch"}
    files = {p.name: p.read_bytes() for p in (tmp_path / "bank").iterdir()}
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "bank").glob("*.png")}

    for item in items:
        assert item.kind in BANK_METHODS
        assert item.real_path in real
        original = np.asarray(Image.open(item.real_path).convert("RGB"))
        check_exact(load_bank_item(item), original, CLASS_OF_FAMILY[item.kind.partition(":")[0]])
        if item.kind.startswith("splice:"):
            assert item.donor_path in real and item.donor_path != item.real_path
        elif item.kind.startswith("ai_patch:"):
            assert item.donor_path in ai
        else:
            assert item.donor_path is None

    # A second run skips the finished items; a lost one is rebuilt to the same bytes.
    items[1].image.unlink()
    build_bank(real, ai, tmp_path / "bank", count=4, seed=2, progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "bank").iterdir()} == files
    for item in items:
        if item is not items[1]:
            assert item.image.stat().st_mtime_ns == mtimes[item.image.name]
    assert load_bank(tmp_path / "bank") == items

    # Same seed elsewhere gives the same files.
    build_bank(real, ai, tmp_path / "again", count=4, seed=2, progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "again").iterdir()} == files


def test_bank_downscales_large_photos(tmp_path, photos):
    real, _ = photos
    bank = tmp_path / "bank"
    build_bank(real, [], bank, count=3, seed=0, methods=["copy_move"], progress=False, max_side=48)
    for item in load_bank(bank):
        assert max(load_bank_item(item).image.shape[:2]) == 48


def test_bank_rejects_bad_requests(tmp_path, photos):
    real, ai = photos
    bank = tmp_path / "bank"
    with pytest.raises(ValueError, match="at least one real photo"):
        build_bank([], ai, bank, count=2, seed=0, progress=False)
    with pytest.raises(ValueError, match="count must be"):
        build_bank(real, ai, bank, count=-1, seed=0, progress=False)
    with pytest.raises(ValueError, match="unknown manipulations"):
        build_bank(real, ai, bank, count=2, seed=0, methods=["blur"], progress=False)
    with pytest.raises(ValueError, match="needs ai_donors"):
        build_bank(real, [], bank, count=2, seed=0, methods=["ai_patch:poisson"], progress=False)
    with pytest.raises(ValueError, match="needs donors"):  # the donor must be another photo
        build_bank(real[:1], ai, bank, count=2, seed=0, methods=["splice:poisson"], progress=False)
    with pytest.raises(FileNotFoundError, match="build_bank"):
        load_bank(tmp_path / "nowhere")
