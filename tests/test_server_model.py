"""The service on the bundled default model through the runtime (skipped until it is shipped)."""

import io
import os
import sys
from pathlib import Path

import pytest
import server_support
from PIL import Image

from gamma_detect.models import DEFAULT_MODEL_DIR
from stub_detector import image_bytes
from gamma_detect.verdict import BAND_NAMES

# GAMMA_MODEL points the test at another exported model (e.g. before the default one is shipped).
MODEL = Path(os.environ.get("GAMMA_MODEL") or DEFAULT_MODEL_DIR)
pytestmark = pytest.mark.skipif(not ((MODEL / "manifest.json").exists() or MODEL.is_file()),
                                reason="the default model is not in models/default")


def test_default_model_end_to_end_without_torch():
    b = server_support.backend_with(detector="", model=os.environ.get("GAMMA_MODEL", ""))   # the real runtime
    try:
        b.start_worker()
        ready = b.client.get("/readyz").get_json()
        assert ready["status"] == "ready"
        detector = b.detector
        assert ready["model"]["digest"] == detector.model_info["digest"]
        data = image_bytes(320, 240, "JPEG", seed=1)
        job = b.upload(data, "photo.jpg").get_json()["job_id"]
        view = b.wait(job, 30).get_json()
        assert view["status"] == "finished", view
        result = view["result"]
        assert list(result)[:6] == ["path", "ai_probability", "verdict", "uncertain_reason", "mask_fraction", "sources"]
        expected = detector.result(detector.predict([__import__("numpy").asarray(Image.open(io.BytesIO(data)).convert("RGB"))])[0])
        for key in ("ai_probability", "verdict", "mask_fraction", "sources"):
            assert result[key] == expected[key]          # exactly what `gamma predict --json` prints
        assert result["verdict"] in BAND_NAMES
        assert result["model"]["digest"] == detector.model_info["digest"]
        overlay = Image.open(io.BytesIO(b.client.get(result["heatmap_url"]).data))
        assert overlay.size == (320, 240)
        tiny = b.upload(image_bytes(40, 40, "PNG"))
        assert tiny.status_code == 422 and tiny.get_json()["code"] == "image_too_small"
    finally:
        b.stop()
        server_support.delete_keys()


def test_serving_the_default_model_never_imports_torch():
    import subprocess

    code = ("import sys, numpy as np\n"
            "from gamma_detect.server import app, worker, cli\n"
            "from gamma_detect.server.config import Settings\n"
            "from gamma_detect.server.jobs import load_model\n"
            "d = load_model(Settings.from_env())\n"
            "d.predict([np.zeros((240, 320, 3), np.uint8)])\n"
            "assert 'torch' not in sys.modules and 'gamma_detect.train' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
