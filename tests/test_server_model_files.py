"""GET /v1/model and /v1/model/files/<sha256>: the served model for clients that run it themselves."""

import hashlib
import json

import server_support
from server_support import backend  # noqa: F401

from gamma_detect.runtime.detector import default_model_path


def test_model_lists_its_onnx_files_by_digest_and_revalidates(backend):
    response = backend.client.get("/v1/model")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-cache"
    body = response.get_json()
    manifest = json.loads((default_model_path() / "manifest.json").read_text())
    assert body["manifest"] == manifest
    onnx = {a["sha256"]: a for a in manifest["artifacts"] if a["format"] == "onnx"}
    assert {f["sha256"] for f in body["files"]} == set(onnx)
    assert all(f["url"] == f"/v1/model/files/{f['sha256']}" for f in body["files"])
    etag = response.headers["ETag"]
    again = backend.client.get("/v1/model", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag


def test_model_file_is_served_by_its_sha256_and_cached_for_good(backend):
    files = backend.client.get("/v1/model").get_json()["files"]
    onnx = files[-1]
    response = backend.client.get(onnx["url"])
    assert response.status_code == 200
    assert hashlib.sha256(response.data).hexdigest() == onnx["sha256"] and len(response.data) == onnx["bytes"]
    assert "immutable" in response.headers["Cache-Control"]
    missing = backend.client.get("/v1/model/files/" + "0" * 64)
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"
    assert "GET /v1/model" in missing.get_json()["message"]


def test_model_follows_the_configured_model_folder(tmp_path):
    manifest = json.loads((default_model_path() / "manifest.json").read_text())
    manifest["model"]["version"] = "9.9.9-test"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    b = server_support.backend_with(model=str(tmp_path))
    try:
        assert b.client.get("/v1/model").get_json()["manifest"]["model"]["version"] == "9.9.9-test"
        sha = next(a["sha256"] for a in manifest["artifacts"] if a["format"] == "onnx")
        absent = b.client.get(f"/v1/model/files/{sha}")   # listed, but this folder holds only the manifest
        assert absent.status_code == 404 and "not in the model folder" in absent.get_json()["message"]
    finally:
        b.stop()
        server_support.delete_keys()
