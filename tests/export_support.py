"""Shared export fixtures: a tiny calibrated checkpoint exported once per test session, and the released model.

The tiny model (the `tiny` preset, random weights, 96 px views) checks structure and plumbing in
seconds; parity and INT8 numbers are only meaningful on the released default checkpoint, so those
tests use models/default/gamma-starter.pt and skip (saying so) while it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from gamma_detect.models import DEFAULT_MODEL_DIR

REPO = Path(__file__).resolve().parent.parent
# GAMMA_RELEASED_CHECKPOINT points the released-model tests at another released checkpoint (its folder holding
# the exported manifest and ONNX files), e.g. to check a candidate model before it replaces the default one.
RELEASED = Path(os.environ.get("GAMMA_RELEASED_CHECKPOINT", DEFAULT_MODEL_DIR / "gamma-starter.pt"))
# The protocol's folds (runs/ is not in git; the default model keeps a copy naming files only).
FOLDS = next((f for f in (REPO / "runs" / "starter" / "folds.json", RELEASED.parent / "folds.json") if f.is_file()),
             REPO / "runs" / "starter" / "folds.json")
STARTER_IMAGES = REPO / "work" / "starter" / "images"
TINY_TEMPERATURE = 1.7
TINY_BANDS = [{"name": "real", "min": 0.0, "max": 0.2}, {"name": "likely_real", "min": 0.2, "max": 0.4},
              {"name": "uncertain", "min": 0.4, "max": 0.6}, {"name": "likely_ai", "min": 0.6, "max": 0.8},
              {"name": "ai", "min": 0.8, "max": 1.0 + 1e-9}]

_CACHE: dict[str, object] = {}

needs_released = pytest.mark.skipif(
    not RELEASED.is_file(),
    reason=f"the released default checkpoint {RELEASED} is absent (parity and INT8 numbers are "
           "only meaningful on the trained model; rerun once it lands)")
needs_starter = pytest.mark.skipif(not (FOLDS.is_file() and STARTER_IMAGES.is_dir()),
                                   reason="needs the starter images and runs/starter/folds.json")


def tiny_checkpoint(directory: Path, calibrated: bool = True) -> Path:
    torch = pytest.importorskip("torch", reason="building a test model needs the `train` extra (torch)")

    from gamma_detect.train.config import load_preset
    from gamma_detect.train.trainer import build_model, save_checkpoint

    cfg = load_preset("tiny")
    cfg.model.pretrained = False
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so outputs vary with the input
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    extra = {}
    if calibrated:
        extra = {"calibration": {"temperature": TINY_TEMPERATURE}, "bands": TINY_BANDS,
                 "crop_policy": cfg.crop.to_dict(), "training": {"records": 16, "device": "cpu"},
                 "data": {"spec": "csv:tiny.csv", "records": 16}}
    path = directory / ("gamma-tiny.pt" if calibrated else "gamma-uncalibrated.pt")
    save_checkpoint(path, model, cfg, **extra)
    return path


def write_images(directory: Path, sizes=((120, 160), (96, 96), (300, 200), (140, 410))) -> list[Path]:
    from conftest import synthetic_photo
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (h, w) in enumerate(sizes):
        path = directory / f"photo{i}.png"
        Image.fromarray(synthetic_photo(h, w, i)).save(path)
        paths.append(path)
    return paths


def tiny_export(tmp_path_factory) -> Path:
    """A model folder with the tiny checkpoint, its FP32 ONNX and manifest (built once per session)."""
    if "tiny" not in _CACHE:
        from gamma_detect.export.build import ExportOptions, export_model

        root = tmp_path_factory.mktemp("tiny_model")
        checkpoint = tiny_checkpoint(root)
        images = root / "images"
        write_images(images)
        result = export_model(checkpoint, ["onnx"], ExportOptions(images=images, parity_images=4, progress=False,
                                                                  threads=2))
        assert result.ok, result.failures
        _CACHE["tiny"] = root
    return _CACHE["tiny"]  # type: ignore[return-value]


def released_export(tmp_path_factory) -> Path:
    """The released checkpoint exported to FP32 ONNX in a temporary folder (once per session)."""
    if "released" not in _CACHE:
        import shutil

        from gamma_detect.export.build import ExportOptions, export_model

        root = tmp_path_factory.mktemp("released_model")
        checkpoint = root / RELEASED.name
        shutil.copy2(RELEASED, checkpoint)
        for extra in ("report.json",):
            if (RELEASED.parent / extra).is_file():
                shutil.copy2(RELEASED.parent / extra, root / extra)
        result = export_model(checkpoint, ["onnx"], ExportOptions(folds=FOLDS, parity_images=4, progress=False,
                                                                  threads=2))
        assert result.ok, result.failures
        _CACHE["released"] = root
    return _CACHE["released"]  # type: ignore[return-value]


def held_out(count: int | None, seed: int = 0) -> list[tuple[Path, int]]:
    """``count`` out-of-fold (fold 0) starter images with labels, both classes (None: all of them)."""
    from gamma_detect.export.quantize import fold_split

    return fold_split(FOLDS, 0, 0, count, seed=seed).evaluation


def manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    from conftest import synthetic_photo

    return synthetic_photo(h, w, seed)
