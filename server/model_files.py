"""GET /v1/model: the served model's manifest and its ONNX files by digest, for clients that run the model
themselves (the extension on device). The manifest answer revalidates (its ETag is its own sha256, so a client
learns cheaply when the model changed); a file is addressed by its sha256 and cached for good."""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Response, current_app, request, send_file

from ..runtime.detector import default_model_path
from ..runtime.manifest import read_manifest
from .errors import ApiError

model_bp = Blueprint("model", __name__, url_prefix="/v1/model")


def _manifest() -> tuple[dict, object]:
    settings = current_app.extensions["gamma"].settings
    return read_manifest(settings.model or default_model_path())


def _onnx(manifest: dict) -> list[dict]:
    return [a for a in manifest["artifacts"] if a.get("format") == "onnx"]


@model_bp.get("")
def model() -> Response:
    manifest, _ = _manifest()
    files = [{"variant": a["variant"], "file": a["file"], "sha256": a["sha256"], "bytes": a.get("bytes"),
              "url": f"/v1/model/files/{a['sha256']}"} for a in _onnx(manifest)]
    body = json.dumps({"manifest": manifest, "files": files}, separators=(",", ":")).encode()
    etag = hashlib.sha256(body).hexdigest()
    if request.if_none_match and etag in request.if_none_match:
        return Response(status=304, headers={"ETag": f'"{etag}"'})
    return Response(body, mimetype="application/json", headers={"ETag": f'"{etag}"', "Cache-Control": "no-cache"})


@model_bp.get("/files/<sha256>")
def model_file(sha256: str) -> Response:
    manifest, directory = _manifest()
    entry = next((a for a in _onnx(manifest) if a["sha256"] == sha256.lower()), None)
    if entry is None:
        raise ApiError("not_found", "no model file with that sha256: GET /v1/model lists the served ones")
    path = directory / entry["file"]
    if not path.is_file():
        raise ApiError("not_found", f"{entry['file']} is listed in the manifest but not in the model folder")
    response = send_file(path, mimetype="application/octet-stream", etag=sha256, max_age=31536000)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
