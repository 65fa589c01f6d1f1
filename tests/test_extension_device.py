"""The extension on device (issue 23): Debian's chromium with the unpacked extension (its vendor/
folder built by `npm run build`), mode "device", and no gamma server running: a listener on the
configured server's port records any connection, the local test site records every request.

Needs what test_extension_e2e.py needs, plus `npm ci && npm run build` in extension/ (tests/run.sh).
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest_extension import EXTENSION_DIR, ext_browser, ext_page, test_site  # noqa: E402,F401

pytestmark = pytest.mark.slow

VERDICTS = ("real", "likely_real", "uncertain", "likely_ai", "ai")
FINAL = ("done", "error", "skipped")


class Listener:
    """A TCP port where the gamma server would be: counts every connection (none may come)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def no_server():
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture()
def device(ext_browser, no_server):
    assert (EXTENSION_DIR / "vendor" / "model" / "bundle.json").is_file(), \
        "the on-device runtime is not built: run `npm ci && npm run build` in extension/"
    ext_browser.configure(serverUrl=f"http://127.0.0.1:{no_server.port}", apiKey="", sendMode="url",
                          sendPageUrl=False, badgeUncertain=True, autoScanSites=[], mode="device")
    ext_browser.sw("() => gammaDetect.cache.clear()")
    yield ext_browser
    ext_browser.configure(mode="server")


def image(state: dict, element_id: str) -> dict | None:
    return next((e for e in state.get("images", []) if e.get("elementId") == element_id), None)


def final(element_id: str):
    return lambda s: (image(s, element_id) or {}).get("state") in FINAL


def test_device_check_from_the_menu_without_a_server(device, ext_page, test_site, no_server):
    page = ext_page
    page.goto(test_site.page())
    page.wait_for_load_state("load")
    before = list(test_site.requests)
    for selector in ("#ai1", "#real1"):
        answer = device.context_click(page, selector)
        assert answer and answer["ok"] and answer["found"], answer
        state = device.wait_for(page, final(selector[1:]), timeout=120, what=f"the on-device result on {selector}")
        entry = image(state, selector[1:])
        assert entry["state"] == "done", entry["error"]
        assert entry["verdict"] in VERDICTS
        assert "Checked on this device" in entry["panel"]["text"], entry["panel"]["text"]
    assert no_server.connections == 0
    fetched = [path for path, _ in test_site.requests[len(before):]]
    assert sorted(set(fetched)) <= ["/ai/flux1.webp", "/photos/robin.jpg"], fetched


# --------------------------------------------------------------------------- parity with the Python runtime

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "work" / "starter"


def _starter_sample(per_format: dict[str, int]) -> list[Path]:
    """Starter images spread over each format's sizes (smallest to largest), when the starter set is here."""
    import csv

    index = STARTER / "index.csv"
    if not index.is_file():
        return []
    rows = list(csv.DictReader(index.open()))
    picked = []
    for fmt, count in per_format.items():
        rs = sorted((r for r in rows if r["format"] == fmt), key=lambda r: (int(r["width"]) * int(r["height"]), r["path"]))
        picked += [STARTER / rs[round(i * (len(rs) - 1) / max(1, count - 1))]["path"] for i in range(min(count, len(rs)))]
    return picked


def _parity_files() -> dict[str, bytes]:
    """The project's fixtures, starter images, and the decoder's special cases made from a fixture photo."""
    import io

    from PIL import Image

    files = {f"parity/{p.parent.name}-{p.name}": p.read_bytes() for d in ("photos", "ai")
             for p in sorted((REPO / "tests" / "assets" / d).glob("*")) if p.suffix in (".jpg", ".webp", ".png")}
    files.update({f"parity/starter-{p.name}": p.read_bytes() for p in _starter_sample({"JPEG": 6, "PNG": 3, "WEBP": 6})})
    photo = Image.open(REPO / "tests" / "assets" / "photos" / "lake.jpg").convert("RGB")
    out = io.BytesIO()
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    rgba.save(out, "PNG")
    files["parity/alpha.png"] = out.getvalue()
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees
    photo.save(out, "JPEG", quality=92, exif=exif)
    files["parity/exif-rotated.jpg"] = out.getvalue()
    out = io.BytesIO()
    photo.resize((150, 100)).save(out, "PNG")
    files["parity/small.png"] = out.getvalue()
    return files


def _python_side(data: bytes, detector) -> tuple[dict, "np.ndarray"]:
    """What the server computes for these bytes: its decode (JPEG at reduced DCT scale), then the Detector."""
    from gamma_detect.server.decode import decode

    rgb, info = decode(data, max_pixels=50_000_000, work=detector.policy.working_size)
    prediction = detector.predict([rgb], native=[(info.height, info.width)])[0]
    return detector.result(prediction), prediction.mask > 0.5


def _device_mask(device, heatmap_url: str):
    import base64
    import io

    import numpy as np
    from PIL import Image

    png = device.sw("async (id) => gammaDetect.toDevice('gamma:device:heatmap', {id})", heatmap_url[len("device:"):])
    rgba = np.asarray(Image.open(io.BytesIO(base64.b64decode(png["base64"]))).convert("RGBA"))
    return (255 - rgba[..., 1].astype(int)) >= 128   # the overlay's green channel is 255 - round(255 * mask)


def test_device_parity_with_the_python_runtime(device, test_site):
    import numpy as np

    from gamma_detect.runtime import load_detector

    bundle = __import__("json").loads((EXTENSION_DIR / "vendor" / "model" / "bundle.json").read_text())
    detector = load_detector(REPO / "models" / "default", backend="onnxruntime-cpu", variant=bundle["variant"], threads=1)
    bands = detector.bands
    edges = [b["min"] for b in bands[1:]]
    files = _parity_files()
    test_site.files.update(files)
    rows = []
    for name, data in files.items():
        expected, py_mask = _python_side(data, detector)
        got = device.sw("async (src) => gammaDetect.toDevice('gamma:device:analyze', {src})", f"{test_site.url}/{name}")
        dev_mask = _device_mask(device, got["heatmap_url"])
        assert dev_mask.shape == py_mask.shape, (name, dev_mask.shape, py_mask.shape)
        marked = max(py_mask.mean(), dev_mask.mean())
        union = np.logical_or(py_mask, dev_mask).sum()
        iou = float(np.logical_and(py_mask, dev_mask).sum() / union) if union else 1.0
        p_py, p_dev = expected["ai_probability"], got["ai_probability"]
        near_edge = min(abs(p_py - e) for e in edges) < 0.02
        rows.append({"image": name, "size": f"{got['image']['width']}x{got['image']['height']}",
                     "python": p_py, "device": p_dev, "diff": abs(p_py - p_dev), "band_py": expected["verdict"],
                     "band_dev": got["verdict"], "near_edge": near_edge, "marked": float(marked), "iou": iou,
                     "views": got["model"]["on_device"]["views"], "ms": got["timings"]["total_ms"]})
    diffs = np.array([r["diff"] for r in rows])
    print(f"\nparity, {len(rows)} images, variant {bundle['variant']}: |p_python - p_device| "
          f"median {np.median(diffs):.4f}, p95 {np.percentile(diffs, 95):.4f}, max {diffs.max():.4f}; "
          f"within 0.02: {np.mean(diffs <= 0.02):.0%}")
    print(f"{'image':44} {'size':>10} {'python':>7} {'device':>7} {'diff':>7} {'bands':>24} {'marked':>7} {'IoU':>5} views ms")
    for r in rows:
        print(f"{r['image'][:44]:44} {r['size']:>10} {r['python']:7.4f} {r['device']:7.4f} {r['diff']:7.4f} "
              f"{r['band_py'] + '/' + r['band_dev']:>24} {r['marked']:7.3f} {r['iou']:5.2f} {r['views']:5} {r['ms']:.0f}")
    assert len(rows) >= 9
    assert np.mean(diffs <= 0.02) >= 0.95 and diffs.max() <= 0.05, rows
    for r in rows:
        assert r["band_py"] == r["band_dev"] or r["near_edge"], r
        if r["marked"] >= 0.01:
            assert r["iou"] >= 0.9, r
