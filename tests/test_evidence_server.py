"""The API's results carry the evidence of the original bytes: uploads, URL jobs and cache, privacy."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import server_support
from evidence_support import created, encode, make_chain, sign, textured
from jsonschema import Draft202012Validator
from PIL import PngImagePlugin
from server_support import backend, backend_with, image_server  # noqa: F401

from gamma_detect.server import feedback
from gamma_detect.server.openapi import document

pytest.importorskip("c2pa", reason="c2pa-python is a base dependency: pip install -e .")

ASSETS = Path(__file__).parent / "assets" / "evidence"
DOC = document()
RESULT = Draft202012Validator({**DOC["components"]["schemas"]["Result"], "components": DOC["components"]})


def analyse(b, data: bytes, name: str) -> dict:
    job = b.upload(data, name).get_json()["job_id"]
    view = b.wait(job).get_json()
    assert view["status"] == "finished", view
    RESULT.validate(view["result"])
    return view["result"]


def test_upload_of_a_signed_ai_image_is_ai_by_its_content_credentials(backend):
    backend.start_worker()
    plain = encode(textured(300, 300), "JPEG", quality=90)
    signed = sign(plain, "image/jpeg", make_chain("Acme AI"), [created("trainedAlgorithmicMedia", agent="Acme Gen")])
    pixels, credentials = analyse(backend, plain, "plain.jpg"), analyse(backend, signed, "signed.jpg")
    assert (pixels["verdict_reason"], pixels["evidence"]) == ("pixels", [])
    assert (credentials["verdict"], credentials["verdict_reason"]) == ("ai", "c2pa:ai_generated")
    assert credentials["evidence"][0]["summary"].startswith("Content Credentials: made with Acme Gen")
    assert "evidence_ms" in credentials["timings"]
    # Same pixels, other metadata: another sha256, so another cached result (metadata is evidence).
    assert credentials["image"]["sha256"] != pixels["image"]["sha256"]
    again = backend.upload(signed, "again.jpg")
    assert again.status_code == 200 and again.get_json()["verdict_reason"] == "c2pa:ai_generated"


def test_url_job_reads_the_fetched_original_bytes(image_server):
    b = backend_with(fetch_test_allow=image_server.allow)
    try:
        b.start_worker()
        url = image_server.add("/canon.jpg", (ASSETS / "piexif" / "r_canon.jpg").read_bytes(),
                               headers={"Content-Type": "image/jpeg"})
        job = b.client.post("/v1/analyze", json={"url": url}).get_json()["job_id"]
        result = b.wait(job).get_json()["result"]
        RESULT.validate(result)
        assert [e["summary"] for e in result["evidence"]] == ["Camera: Canon PowerShot G1 X Mark II (not proof)"]
        assert result["verdict_reason"] == "pixels"
    finally:
        b.stop()
        server_support.delete_keys()


def test_prompts_reach_the_client_never_the_log_and_expire_with_the_result(backend, caplog):
    backend.start_worker()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a secret lighthouse prompt\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, "
                                "Size: 64x64, Model: secretModel")
    data = encode(textured(96, 96), "PNG", pnginfo=info)
    with caplog.at_level(logging.DEBUG):
        result = analyse(backend, data, "gen.png")
    (item,) = result["evidence"]
    assert item["private"]["prompt"].startswith("a secret lighthouse prompt")
    assert result["verdict_reason"] == "generator_parameters:ai_generated"
    assert "lighthouse" not in caplog.text
    key = backend.settings.key("result", result["model"]["digest"], result["image"]["sha256"])
    assert "lighthouse" in backend.connection.get(key).decode()     # the cached result holds it ...
    assert 0 < backend.connection.ttl(key) <= backend.settings.cache_ttl   # ... and expires with it
    # Feedback is kept for good: the prompt is not.
    body = {"sha256": result["image"]["sha256"], "label": "real", "result": result}
    assert backend.client.post("/v1/feedback", json=body).status_code == 201
    out = io.StringIO()
    feedback.export(backend.connection, backend.settings, out)
    stored = json.loads(out.getvalue().splitlines()[-1])["result"]
    assert "lighthouse" not in json.dumps(stored) and stored["evidence"][0]["summary"]
