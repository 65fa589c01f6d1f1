"""The load-time self-check: a reduced-precision artifact that strays from FP32 on this machine is never served."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal

import numpy as np
import pytest
import server_support
from PIL import Image
from export_support import manifest, rgb, tiny_export, write_images

from gamma_detect.files import sha256_file
from gamma_detect.runtime import load_detector
from gamma_detect.runtime.cpu import cpu_identity
from gamma_detect.runtime.selfcheck import SelfCheckFailed, reference_views
from gamma_detect.server.worker import alive_workers

TINY_INT8_BOUND = 0.2
onnx = pytest.importorskip("onnx", reason="building INT8/FP16 test artifacts needs the `train` extra (onnx)")


@pytest.fixture(scope="module")
def reduced_dir(tmp_path_factory):
    """The tiny model with INT8 and FP16 artifacts and its self-check views (built once)."""
    from gamma_detect.export.build import ExportOptions, export_model
    root = tmp_path_factory.mktemp("reduced")
    shutil.copytree(tiny_export(tmp_path_factory), root, dirs_exist_ok=True)
    images = write_images(root / "more", sizes=[(96 + 7 * i, 120 + 11 * i) for i in range(12)])
    folds = root / "folds.json"
    folds.write_text(json.dumps({"assignments": [{"path": str(p), "label": i % 2, "fold": int(i < 6), "group": str(i)}
                                                 for i, p in enumerate(images)]}))
    # The tiny random model is no test of INT8 accuracy: accept its first recipe whatever it measures and give
    # its self-check a bound it can meet, so the plumbing (views, drift, refusal, fallback) is what is tested.
    import gamma_detect.export.quantize as quantize
    import gamma_detect.export.selfcheck as selfcheck
    saved = quantize.MEAN_PROBABILITY_TOLERANCE, quantize.AUC_TOLERANCE, selfcheck.INT8_BOUND
    quantize.MEAN_PROBABILITY_TOLERANCE, quantize.AUC_TOLERANCE = 1.0, 1.0
    selfcheck.INT8_BOUND = {**selfcheck.INT8_BOUND, "max": TINY_INT8_BOUND}
    try:
        result = export_model(root / "gamma-tiny.pt", ["onnx-int8", "onnx-fp16"],
                              ExportOptions(folds=folds, eval_fold=1, calibration_images=4, images=root / "images",
                                            parity_images=4, progress=False, threads=2))
    finally:
        quantize.MEAN_PROBABILITY_TOLERANCE, quantize.AUC_TOLERANCE, selfcheck.INT8_BOUND = saved
    assert not {"onnx-int8", "onnx-fp16", "self-check"} & set(result.failures), result.failures
    return root


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _stray(directory, variant="int8"):
    """Make the artifact's probabilities stray (halved, as far-off kernels would), keeping its manifest digest right."""
    m = manifest(directory)
    entry = next(e for e in m["artifacts"] if e["variant"] == variant)
    path = directory / entry["file"]
    model = onnx.load(str(path))
    producer = next(n for n in model.graph.node if "probability" in n.output)
    producer.output[list(producer.output).index("probability")] = "probability_raw"
    half = onnx.helper.make_tensor("stray_half", onnx.TensorProto.FLOAT, [], [0.5])
    model.graph.initializer.append(half)
    model.graph.node.append(onnx.helper.make_node("Mul", ["probability_raw", "stray_half"], ["probability"]))
    onnx.save(model, str(path))
    entry["sha256"], entry["bytes"] = sha256_file(path), path.stat().st_size
    (directory / "manifest.json").write_text(json.dumps(m))


def test_export_ships_small_reference_views_with_fp32_outputs(reduced_dir):
    m = manifest(reduced_dir)
    spec = m["self_check"]
    assert spec["bytes"] <= 400_000 and spec["views"] >= 1
    assert spec["bounds"]["int8"] == {"statistic": "mean_abs_probability_diff", "max": TINY_INT8_BOUND}
    assert spec["bounds"]["fp16"] == {"statistic": "max_abs_probability_diff", "max": 0.01}
    from gamma_detect.runtime import Manifest
    typed = Manifest.read(reduced_dir)
    views, reference, _ = reference_views(typed)
    fp32 = load_detector(reduced_dir)
    # The stored FP32 outputs are what FP32 gives on the stored (PNG round-tripped) views.
    np.testing.assert_allclose(fp32.session.run(views)[0], reference, atol=1e-6)
    for variant in ("int8", "fp16"):
        entry = next(e for e in m["artifacts"] if e["variant"] == variant)
        assert entry["self_check"]["cpu"]["class"] == cpu_identity()["class"]
        assert len(entry["self_check"]["probability"]) == spec["views"]
    from gamma_detect.export.selfcheck import FP16_BOUND, INT8_BOUND
    assert INT8_BOUND == {"statistic": "mean_abs_probability_diff", "max": 0.02}   # what real exports write
    assert FP16_BOUND == {"statistic": "max_abs_probability_diff", "max": 0.01}


def test_a_variant_that_reproduces_fp32_is_served_and_says_what_it_measured(reduced_dir):
    m = manifest(reduced_dir)
    spec = m["self_check"]
    for variant in ("int8", "fp16"):
        detector = load_detector(reduced_dir, variant=variant)
        assert detector.model_info["variant"] == variant and detector.fallback is None
        assert detector.self_check.passed and detector.self_check.views == spec["views"]
        assert detector.self_check.drift < 1e-5   # the machine that built it reproduces its outputs
        assert "fallback" not in detector.model_info
    assert load_detector(reduced_dir).self_check is None   # FP32 is the reference: nothing to check


@pytest.mark.parametrize("variant", ["int8", "fp16"])
def test_a_straying_variant_is_refused_with_what_to_do(reduced_dir, tmp_path, variant):
    folder = _copy(reduced_dir, tmp_path / "m")
    _stray(folder, variant)
    with pytest.raises(SelfCheckFailed, match=r"refusing .*drifts by .*above the acceptance bound.*GAMMA_VARIANT=fp32") \
            as info:
        load_detector(folder, variant=variant)
    assert info.value.report.value > info.value.report.bound
    # Bypassed on purpose (the acceptance tests measure the variant itself), it loads that very variant.
    assert load_detector(folder, variant=variant, self_check=False).model_info["variant"] == variant


def test_a_straying_variant_falls_back_to_fp32_and_says_so(reduced_dir, tmp_path, caplog):
    folder = _copy(reduced_dir, tmp_path / "m")
    _stray(folder)
    with caplog.at_level("WARNING", logger="gamma.runtime"):
        detector = load_detector(folder, variant="int8", fallback_to_fp32=True)
    assert detector.model_info["variant"] == "fp32"
    assert detector.model_info["fallback"] == {"requested_variant": "int8", "reason": "self_check_failed"}
    assert detector.fallback["self_check"]["passed"] is False
    assert any("serving fp32 instead" in r.getMessage() for r in caplog.records)
    fp32 = load_detector(folder)
    image = rgb(150, 200, 3)
    assert detector.predict([image])[0].probability == fp32.predict([image])[0].probability


def test_a_reduced_variant_without_reference_views_is_refused(reduced_dir, tmp_path):
    folder = _copy(reduced_dir, tmp_path / "m")
    m = manifest(folder)
    del m["self_check"]
    (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(SelfCheckFailed, match="no self_check reference views.*re-export"):
        load_detector(folder, variant="int8")
    assert load_detector(folder).model_info["variant"] == "fp32"   # FP32 needs no reference


def test_tampered_reference_views_are_refused(reduced_dir, tmp_path):
    folder = _copy(reduced_dir, tmp_path / "m")
    png = folder / manifest(folder)["self_check"]["file"]
    png.write_bytes(png.read_bytes()[:-10])
    with pytest.raises(Exception, match="sha256"):
        load_detector(folder, variant="int8")


def test_the_server_falls_back_to_fp32_and_says_so_in_readyz_and_results(reduced_dir, tmp_path):
    folder = _copy(reduced_dir, tmp_path / "m")
    _stray(folder)
    b = server_support.backend_with(detector="", model=str(folder), variant="int8")
    try:
        b.start_worker()
        ready = b.client.get("/readyz").get_json()
        assert ready["status"] == "ready", ready
        assert ready["model"]["variant"] == "fp32"
        assert ready["model"]["fallback"] == {"requested_variant": "int8", "reason": "self_check_failed"}
        buffer = io.BytesIO()
        Image.fromarray(rgb(160, 200, 2)).save(buffer, format="PNG")
        data = buffer.getvalue()
        job = b.upload(data, "x.png").get_json()["job_id"]
        view = b.wait(job, 30).get_json()
        assert view["status"] == "finished", view
        assert view["result"]["model"]["variant"] == "fp32"
        assert view["result"]["model"]["fallback"]["requested_variant"] == "int8"
        b.stop()   # asserts a warm stop within STOP_BOUND (the stop stress test, tests/test_worker_stop.py)
        for round_ in range(server_support.STOP_ROUNDS):   # workers that fell back stop as promptly, idle or just after a job
            b.start_worker()
            if round_ % 2:
                Image.fromarray(rgb(160, 200, 10 + round_)).save(buffer := io.BytesIO(), format="PNG")
                job = b.upload(buffer.getvalue(), "x.png").get_json()["job_id"]
                assert b.wait(job, 30).get_json()["status"] == "finished"
            b.stop()
    finally:
        b.stop()
        server_support.delete_keys()


def test_the_worker_command_that_fell_back_stops_warm_on_sigterm(reduced_dir, tmp_path):
    folder = _copy(reduced_dir, tmp_path / "m")
    _stray(folder)
    b = server_support.backend_with(detector="", model=str(folder), variant="int8")
    env = {**os.environ, "REDIS_URL": b.settings.redis_url, "GAMMA_MODEL": str(folder), "GAMMA_VARIANT": "int8",
           "GAMMA_WORKERS": "1", "GAMMA_LOG_LEVEL": "WARNING"}
    env.pop("GAMMA_DETECTOR", None)
    try:
        for _ in range(server_support.STOP_ROUNDS):
            with server_support.worker_command(env) as command:
                server_support.eventually(lambda: b.client.get("/readyz").status_code == 200
                                          or command.poll() is not None, 60, what="a ready worker")
                assert b.client.get("/readyz").get_json()["model"]["variant"] == "fp32"
                command.send_signal(signal.SIGTERM)
                assert command.wait(server_support.STOP_BOUND) == 0
                assert b"killing it" not in command.stderr.read()
                server_support.eventually(lambda: alive_workers(b.connection, b.settings) == 0, 10,
                                          what="the worker to deregister")
    finally:
        b.stop()
        server_support.delete_keys()
