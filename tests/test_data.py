import cv2
import numpy as np
import pytest
from PIL import Image

from gamma_detect.train.audit import shortcut_audit
from gamma_detect.train.config import load_preset
from gamma_detect.train.data import GammaDataset, perturb, sample_view
from gamma_detect.train.manipulate import SOURCE_CLASSES
from gamma_detect.train.sources import load_records

from conftest import synthetic_photo


def test_views_keep_masks_aligned():
    cfg = load_preset("starter")
    image = synthetic_photo(300, 500, 0)
    mask = np.zeros((300, 500), np.uint8)
    mask[:, 250:] = 1
    rng = np.random.default_rng(0)
    for _ in range(10):
        view, (m,) = sample_view(image, cfg.crop, cfg.augment, rng, [mask])
        assert view.shape == (224, 224, 3) and m.shape == (224, 224)
        # Left half of the photo is dark-ish red gradient, right half brighter: the mask follows the pixels.
        assert set(np.unique(m)) <= {0, 1}


def test_perturb_changes_pixels_but_not_shape():
    cfg = load_preset("starter", ["augment.reencode_prob=1.0"])
    view = synthetic_photo(224, 224, 1)
    out = perturb(view, cfg.augment, np.random.default_rng(0))
    assert out.shape == view.shape and out.dtype == np.uint8 and not np.array_equal(out, view)


def test_samples_are_deterministic_and_labelled(tiny_dataset):
    cfg = load_preset("tiny", [f"data=csv:{tiny_dataset}"])
    records = load_records(cfg.data)
    ds = GammaDataset(records, cfg.crop, cfg.augment, seed=3, progress=False)
    assert len(ds) == len(records) + round(8 * cfg.augment.manipulated_share)
    a, b = ds[5], ds[5]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    ds.set_epoch(1)
    assert not np.array_equal(ds[5]["image"], a["image"])
    for i in range(len(ds)):
        kind, j = ds.items[i]
        item = ds[i]
        assert item["image"].shape == (3, 96, 96) and -1 <= item["image"].min() and item["image"].max() <= 1
        if kind == "clean" and records[j].label == 1:
            assert item["mask"].min() == 1 and (item["sources"] == SOURCE_CLASSES.index("generated")).all()
        elif kind == "clean":
            assert item["mask"].max() == 0 and item["sources"].max() == 0
        else:  # manipulated real photo: label 1, partial mask, sources only inside it
            assert item["label"] == 1 and 0 < item["mask"].mean() < 0.5
            assert ((item["sources"] > 0) == (item["mask"][0] > 0)).all()


def stationary_texture(height: int, width: int, seed: int) -> np.ndarray:
    """Content whose statistics do not depend on the image size: blobs of fixed pixel sizes, fixed density."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), rng.uniform(60, 190, 3), np.float32)
    for _ in range(height * width // 1500):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, center, int(rng.integers(4, 30)), rng.uniform(0, 255, 3).tolist(), -1)
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def _file_dataset(root, blur_ai: bool):
    """AI files: square WebP; real files: JPEG of varied sizes and aspects; same content generator."""
    rng = np.random.default_rng(0)
    rows = ["path,label,group"]
    for i in range(48):
        ai = i % 2 == 1
        h, w = (256, 256) if ai else (int(rng.integers(150, 400)), int(rng.integers(200, 600)))
        image = stationary_texture(h, w, 100 + i)
        if ai and blur_ai:
            image = np.asarray(Image.fromarray(image).resize((w // 4, h // 4)).resize((w, h)))
        name = f"{i}.{'webp' if ai else 'jpg'}"
        Image.fromarray(image).save(root / name, quality=90)
        rows.append(f"{name},{'ai' if ai else 'real'},{'ai' if ai else 'real'}:g{i % 6}")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    records = load_records(f"csv:{root / 'index.csv'}")
    for r in records:  # the CSV loader leaves size unknown; the audit's raw-file contrast needs it
        with Image.open(r.path) as im:
            object.__setattr__(r, "width", im.width)
            object.__setattr__(r, "height", im.height)
            object.__setattr__(r, "format", im.format)
    return records


def test_shortcut_audit_pipeline_hides_file_properties(tmp_path):
    cfg = load_preset("starter")
    result = shortcut_audit(cfg, _file_dataset(tmp_path, blur_ai=False), progress=False)
    print(f"shortcut audit: pipeline ROC-AUC {result['pipeline_auc']:.3f}, raw files {result['raw_file_auc']:.3f}")
    assert result["raw_file_auc"] >= 0.9          # the files themselves are trivially separable...
    assert result["pipeline_auc"] <= 0.65         # ...what the network sees is not
    assert result["passed"]


def test_shortcut_audit_catches_a_real_shortcut(tmp_path):
    cfg = load_preset("starter")
    result = shortcut_audit(cfg, _file_dataset(tmp_path, blur_ai=True), progress=False)
    assert result["pipeline_auc"] > 0.8 and not result["passed"]
