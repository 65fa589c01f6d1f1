"""The packaged extension (`npm run build` in extension/): what the zip holds and what its manifest allows."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[1] / "extension"


@pytest.fixture(scope="module")
def package():
    zips = sorted((EXTENSION / "dist").glob("gamma-detect-*.zip"))
    assert zips, "no package: run `npm ci && npm run build` in extension/ (tests/run.sh does)"
    with zipfile.ZipFile(zips[-1]) as z:
        yield z, zips[-1].stat().st_size


def test_device_package_bundles_the_wasm_runtime_and_the_model(package):
    z, size = package
    names = set(z.namelist())
    manifest = json.loads(z.read("manifest.json"))
    for name in manifest["content_scripts"][0]["js"] + [manifest["background"]["service_worker"], "offscreen/offscreen.html",
                                                         "offscreen/runtime.js", "vendor/ort/ort.wasm.min.mjs",
                                                         "vendor/ort/ort-wasm-simd-threaded.wasm", "vendor/model/manifest.json",
                                                         "vendor/exifr/exifr.mjs", "lib/device/metadata.js"]:
        assert name in names, name
    bundle = json.loads(z.read("vendor/model/bundle.json"))
    model = z.read("vendor/model/" + bundle["file"])
    assert hashlib.sha256(model).hexdigest() == bundle["sha256"]
    listed = {a["file"]: a["sha256"] for a in json.loads(z.read("vendor/model/manifest.json"))["artifacts"]}
    assert listed[bundle["file"]] == bundle["sha256"]
    # WASM-only: no WebGPU/WebGL/JSEP builds, nothing for development or tests
    assert not [n for n in names if "jsep" in n or "webgpu" in n or "webgl" in n or "asyncify" in n or "jspi" in n]
    assert not [n for n in names if n.startswith(("node_modules/", "test/", "dist/", "docs/")) or n.endswith(".map")]
    assert size < 40 * 1048576


def test_device_package_manifest_allows_wasm_and_isolation_only(package):
    z, _ = package
    manifest = json.loads(z.read("manifest.json"))
    csp = manifest["content_security_policy"]["extension_pages"]
    assert "'wasm-unsafe-eval'" in csp and "'unsafe-eval'" not in csp.replace("'wasm-unsafe-eval'", "")
    assert "http" not in csp, "no remote script source"
    assert manifest["cross_origin_embedder_policy"]["value"] == "require-corp"
    assert manifest["cross_origin_opener_policy"]["value"] == "same-origin"
    assert "offscreen" in manifest["permissions"]
    runtime = z.read("offscreen/runtime.js").decode()
    assert 'ort.env.wasm.wasmPaths = VENDOR + "ort/"' in runtime and "cdn" not in runtime.lower()
