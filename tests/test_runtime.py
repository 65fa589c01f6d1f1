"""The serving runtime: Detector.predict over the crop policy, backend selection, no torch, `gamma predict`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_support import REPO, TINY_BANDS, manifest, rgb, tiny_export
from torchless_support import run_without_torch

from gamma_detect.contract import MAX_BATCH_VIEWS
from gamma_detect.crops import ImageTooSmall
from gamma_detect.runtime import (BackendUnavailable, Detector, Manifest, ManifestError, Prediction, combine_probabilities,
                                  load_detector)
from gamma_detect.verdict import verdict


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return tiny_export(tmp_path_factory)


@pytest.fixture(scope="module")
def detector(tiny_dir):
    return load_detector(tiny_dir, threads=2)


class CountingSession:
    """Wraps a session: records every batch it is given."""

    def __init__(self, inner, max_batch):
        self.inner, self.max_batch, self.batches = inner, max_batch, []

    def run(self, views):
        self.batches.append(len(views))
        return self.inner.run(views)


def test_combine_rule_is_the_mean_logit():
    logits = np.array([-2.0, 0.5, 3.0])
    t = 1.7
    p = 1 / (1 + np.exp(-logits / t))
    assert combine_probabilities(p) == pytest.approx(1 / (1 + np.exp(-logits.mean() / t)), abs=1e-9)
    assert 0 < combine_probabilities(np.array([0.0, 1.0, 1.0])) < 1  # clipped, finite


def test_predict_images_of_any_size(detector):
    images = [rgb(120, 160, 0), rgb(96, 96, 1), rgb(700, 420, 2), rgb(64, 300, 3), rgb(1500, 2000, 4)]
    predictions = detector.predict(images)
    assert len(predictions) == 5
    for image, p in zip(images, predictions):
        assert isinstance(p, Prediction) and 0 < p.probability < 1
        # at the working resolution capped at mask_side (a 1500x2000 image's map is 384x512), not the image's size
        h, w = detector.policy.working_size(*image.shape[:2])
        f = min(1.0, detector.mask_side / max(h, w))
        assert p.mask.shape == (round(h * f), round(w * f)) and p.mask.dtype == np.float32
        assert 0 <= p.mask.min() and p.mask.max() <= 1
        assert set(p.source_shares) == set(manifest_classes(detector)) and sum(p.source_shares.values()) == pytest.approx(1)
        assert p.views == len(detector.policy.views(image)[0])
        assert p.mask_fraction == pytest.approx(float((p.mask > 0.5).mean()))
    # the same image alone or in a batch scores the same
    alone = detector.predict([images[2]])[0]
    assert alone.probability == pytest.approx(predictions[2].probability, abs=1e-6)
    assert detector.predict([]) == []


def manifest_classes(detector):
    return detector.manifest.source_classes


def test_all_views_of_all_images_run_together_in_chunks(detector):
    counting = CountingSession(detector.session, 4)
    d = Detector(detector.manifest, detector.artifact, counting, detector.backend)
    images = [rgb(300, 200, i) for i in range(3)]
    total = sum(len(d.policy.views(i)[0]) for i in images)
    d.predict(images)
    assert sum(counting.batches) == total and max(counting.batches) == 4
    assert len(counting.batches) == -(-total // 4)


def test_views_run_in_batches_of_the_contract_size(detector):
    """The export writes the contract's batch into the manifest; a manifest without one gets it too."""
    assert detector.manifest.max_batch == detector.max_batch == MAX_BATCH_VIEWS
    raw = {k: v for k, v in detector.manifest.raw.items() if k != "max_batch"}
    assert Manifest.from_dict(raw, detector.manifest.directory).max_batch == MAX_BATCH_VIEWS


def test_too_small_image_raises_before_anything_runs(detector):
    counting = CountingSession(detector.session, 32)
    d = Detector(detector.manifest, detector.artifact, counting, detector.backend)
    min_side = detector.policy.min_side
    with pytest.raises(ImageTooSmall) as info:
        d.predict([rgb(120, 120, 0), rgb(min_side - 1, 200, 1)])
    assert info.value.code == "image_too_small" and counting.batches == []
    with pytest.raises(ValueError):
        d.predict([np.zeros((100, 100), np.uint8)])


def test_result_fields_and_verdict_from_the_manifest(detector):
    p = detector.predict([rgb(150, 150, 5)])[0]
    r = detector.result(p)
    assert list(r) == ["ai_probability", "verdict", "uncertain_reason", "mask_fraction", "sources", "verdict_reason",
                       "ai_content"]
    assert r["verdict_reason"] == "pixels"   # the tiny manifest has no decision: the mean view logit alone decides
    assert r["verdict"] == verdict(p.probability, TINY_BANDS) and r["ai_probability"] == round(p.probability, 4)
    json.dumps(r)
    info = detector.model_info
    assert set(info) >= {"name", "version", "digest", "backend"} and info["backend"] == "onnxruntime-cpu"
    assert info["digest"] == next(e["sha256"] for e in manifest(detector.manifest.directory)["artifacts"]
                                  if e["file"] == "gamma-tiny.onnx")


def test_auto_says_what_it_picked_and_why(detector):
    assert detector.backend == "onnxruntime-cpu"
    assert "no TensorRT engine" in detector.selection


def test_load_by_artifact_file_and_errors(tiny_dir):
    d = load_detector(tiny_dir / "gamma-tiny.onnx", threads=1)
    assert d.artifact.variant == "fp32"
    with pytest.raises(ManifestError, match="int8"):
        load_detector(tiny_dir, variant="int8")
    with pytest.raises(ManifestError, match="no model manifest"):
        load_detector(tiny_dir / "images")
    with pytest.raises(ValueError, match="unknown backend"):
        load_detector(tiny_dir, backend="coreml")
    with pytest.raises(ManifestError, match="TensorRT"):
        load_detector(tiny_dir, backend="tensorrt")


def test_torch_backends_are_the_build_sides(tiny_dir):
    for backend in ("pytorch", "pytorch-cuda", "torch-tensorrt"):
        with pytest.raises(BackendUnavailable, match="gamma_detect.export.load_detector"):
            load_detector(tiny_dir, backend=backend)
    with pytest.raises(BackendUnavailable, match="needs torch"):  # auto on a checkpoint file means pytorch
        load_detector(tiny_dir / "gamma-tiny.pt")


def test_pytorch_backend_matches_onnx(tiny_dir, detector):
    pytest.importorskip("torch", reason="the PyTorch backend needs the `train` extra (torch)")
    from gamma_detect.export import load_detector as load_any

    torch_detector = load_any(tiny_dir, backend="pytorch", threads=2)
    assert load_any(tiny_dir / "gamma-tiny.pt", threads=2).backend == "pytorch"
    assert load_any(tiny_dir, threads=2).backend == "onnxruntime-cpu"  # serving backends go to the runtime
    assert torch_detector.backend == "pytorch" and torch_detector.model_info["variant"] == "pytorch"
    images = [rgb(200, 260, 7)]
    a, b = torch_detector.predict(images)[0], detector.predict(images)[0]
    assert abs(a.probability - b.probability) < 1e-4 and np.abs(a.mask - b.mask).max() < 1e-3


def test_runtime_never_imports_torch(tiny_dir):
    """Load and predict with ONNX Runtime while any torch (or train/) import would fail."""
    code = f"""
import sys
import numpy as np
from gamma_detect.runtime import load_detector
d = load_detector({str(tiny_dir)!r}, threads=1)
p = d.predict([np.full((120, 150, 3), 100, np.uint8)])[0]
d.result(p)
assert "torch" not in sys.modules and not any(m.startswith("gamma_detect.train") for m in sys.modules)
print("ok", d.backend)
"""
    out = run_without_torch(code, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "ok onnxruntime-cpu" in out.stdout


# --------------------------------------------------------------------------- gamma predict
def test_predict_cli_json_lines_and_errors(tiny_dir, tmp_path, capsys):
    from PIL import Image

    from gamma_detect.cli import main

    good = tmp_path / "good.jpg"
    Image.fromarray(rgb(180, 240, 3)).save(good)
    small = tmp_path / "small.png"
    Image.fromarray(rgb(20, 20, 4)).save(small)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    paths = [str(good), str(tmp_path / "missing.png"), str(broken), str(small), str(good)]
    code = main(["predict", *paths, "--json", "--model", str(tiny_dir), "--threads", "1"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and [line["path"] for line in lines] == paths
    assert list(lines[0]) == ["path", "ai_probability", "verdict", "uncertain_reason", "mask_fraction", "sources", "verdict_reason", "evidence",
                              "ai_content"]
    assert lines[0] == lines[4]
    assert [line.get("error", {}).get("code") for line in lines] == [
        None, "file_not_found", "image_decode_failed", "image_too_small", None]
    assert all(line["error"]["message"] for line in lines[1:4])


def test_predict_cli_writes_heatmap_overlays(tiny_dir, tmp_path, capsys):
    from PIL import Image

    from gamma_detect.cli import main

    image = tmp_path / "photo.png"
    Image.fromarray(rgb(120, 200, 7)).save(image)
    code = main(["predict", str(image), "--json", "--model", str(tiny_dir), "--heatmap", str(tmp_path / "maps")])
    line = json.loads(capsys.readouterr().out)
    overlay = np.array(Image.open(tmp_path / "maps" / "photo.png.heatmap.png"))
    assert code == 0 and overlay.shape == (120, 200, 3)
    assert line["ai_content"]["extent"] in ("whole_image", "region", "none")
    # The overlay only tints where the map stands out: with no region above 0.5 it is the image itself.
    if line["ai_content"]["region"] is None:
        assert np.abs(overlay.astype(int) - rgb(120, 200, 7).astype(int)).max() <= 1


def test_predict_cli_plain_lines_exit_zero(tiny_dir, tmp_path, capsys):
    from PIL import Image

    from gamma_detect.cli import main

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(rgb(100 + 20 * i, 140, i)).save(paths[-1])
    code = main(["predict", *map(str, paths), "--model", str(tiny_dir), "--batch-images", "2"])
    captured = capsys.readouterr()
    assert code == 0 and len(captured.out.splitlines()) == 3 and "p_ai" in captured.out
    assert "onnxruntime-cpu" in captured.err


def test_predict_cli_decodes_a_large_jpeg_reduced_as_the_server_does(tiny_dir, tmp_path, capsys, monkeypatch):
    from PIL import Image

    from gamma_detect.cli import main
    from gamma_detect.runtime.detector import Detector

    seen = []
    original = Detector.predict

    def recording(self, images, *, native=None, detail=False):
        seen.append(([i.shape[:2] for i in images], native))
        return original(self, images, native=native, detail=detail)

    monkeypatch.setattr(Detector, "predict", recording)
    big = tmp_path / "big.jpg"
    Image.fromarray(rgb(1500, 2000, 5)).save(big, quality=90)
    assert main(["predict", str(big), "--json", "--model", str(tiny_dir), "--threads", "1"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["verdict"] and 0 <= line["ai_probability"] <= 1
    (shape,), (native,) = seen[0]
    assert native == (1500, 2000) and shape[0] < 1500 and shape[0] * 2000 == shape[1] * 1500
