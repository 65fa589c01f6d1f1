"""The extension's on-device port of the crop policy (extension/lib/device/): OpenCV's resize as
crops.resize calls it, the crop plans and the map stitching, against the Python side on the same
inputs (tests/device_fixtures.py writes them; Node runs the port over them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from device_fixtures import write_fixtures  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (apt-get install -y nodejs): the extension's port runs in Node here")
    path = tmp_path_factory.mktemp("device-port") / "fixtures.json"
    write_fixtures(path)
    done = subprocess.run([node, str(REPO / "extension" / "test" / "device_port_check.js"), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_device_area_resize_is_bit_exact(report):
    area = [c for c in report["resize"] if c["mode"] == "area" and c["dtype"] == "uint8"]
    assert len(area) >= 7
    for case in area:
        assert case["differ"] == 0, case


def test_device_linear_resize_within_one_level(report):
    # Enlarging (images with a short side under the input size): OpenCV's SIMD lanes round a few pixels
    # differently from its own scalar formula; the port is within one level there.
    for case in report["resize"]:
        if case["mode"] == "linear" and case["dtype"] == "uint8":
            assert case["max"] <= 1 and case["differ"] / case["values"] < 0.005, case


def test_device_map_resize_matches_float32(report):
    for case in report["resize"]:
        if case["dtype"] == "float32":
            assert case["max"] < 1e-5, case


def test_device_crop_plans_match(report):
    assert len(report["plans"]) >= 10
    assert all(case["same"] for case in report["plans"]), [c for c in report["plans"] if not c["same"]]


def test_device_stitched_maps_match(report):
    assert len(report["stitch"]) >= 6
    for case in report["stitch"]:
        for part in ("mask", "shares"):
            assert case[part]["shape"] == case[part]["want"], case
            assert case[part]["max"] < 1e-5, case


def test_device_constants_match_the_python_runtime(report):
    assert report["constants"]["same"], "extension/lib/device/decide.js constants differ from gamma_detect/decision.py"


def test_device_fused_decision_and_strongest_region_match(report):
    # issue 21's decision section (logistic fusion over view logits and region evidence), the mask calibration
    # and the strongest region, on maps with one smooth blob
    assert len(report["regions"]) == 2
    for case in report["regions"]:
        assert max(case["evidence"]) < 1e-4, case
        assert case["probability"] < 1e-6, case
        assert case["region"] is not None and case["region"] == case["want_region"], case
        assert case["mask_fraction"][0] == case["mask_fraction"][1], case
        # `either`: the same image probability as gamma_detect.decision.Either, raised only over the region's edge
        # (its `ai` edge, or its `likely_ai` edge where it has one)
        assert [e["raised"] for e in case["either"]] == [True, False, True], case
        assert max(e["probability"] for e in case["either"]) < 1e-6, case


def test_device_metadata_evidence_matches_the_servers_reader(report):
    cases = {c["case"]: c for c in report["evidence"]}
    assert len(cases) >= 19
    assert {"automatic1111_cropped.jpg", "automatic1111.webp", "camera.webp", "xmp-ai.webp"} <= set(cases)
    for name, case in cases.items():
        assert case["want"] and case["got"] == case["want"], case
