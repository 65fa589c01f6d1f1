"""End to end through the Flask app, a real Redis and the batching worker (stub Detector)."""

import hashlib
import io
import json
import time

import pytest
import server_support
from jsonschema import Draft202012Validator
from PIL import Image
from server_support import backend, backend_with, image_server  # noqa: F401

from gamma_detect.server import feedback
from gamma_detect.server.openapi import document
from stub_detector import image_bytes

DOC = document()
PREDICT_FIELDS = ["path", "ai_probability", "verdict", "uncertain_reason", "mask_fraction", "sources", "verdict_reason", "evidence",
                  "ai_content"]


def check(response, path: str, method: str = "get"):
    """Validate a response against the OpenAPI document's schema for its status."""
    spec = DOC["paths"][path][method]["responses"][str(response.status_code)]
    if "$ref" in spec:
        spec = DOC["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    schema = spec["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": DOC["components"]}).validate(response.get_json())
    return response.get_json()


def test_openapi_document_is_valid_openapi_31(backend):
    response = backend.client.get("/v1/openapi.json")
    assert response.status_code == 200 and response.get_json()["openapi"] == "3.1.0"
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(response.get_json())


def test_upload_lifecycle_cache_and_heatmap(backend):
    assert backend.client.get("/healthz").get_json() == {"status": "ok"}
    not_ready = backend.client.get("/readyz")
    assert not_ready.status_code == 503 and check(not_ready, "/readyz")["checks"]["worker"] is False
    backend.start_worker()
    ready = backend.client.get("/readyz")
    assert ready.status_code == 200 and check(ready, "/readyz")["model"]["digest"] == "stub0000"

    data = image_bytes(160, 120, "JPEG", seed=3)
    accepted = backend.upload(data, "photo.jpg")
    assert accepted.status_code == 202
    body = check(accepted, "/v1/analyze", "post")
    assert body["status"] == "queued" and body["status_url"] == f"/jobs/{body['job_id']}"
    assert accepted.headers["Location"] == body["status_url"]

    done = backend.wait(body["job_id"])
    view = check(done, "/jobs/{job_id}")
    assert view["status"] == "finished" and view["ended_at"] and view["enqueued_at"]
    result = view["result"]
    assert list(result)[:len(PREDICT_FIELDS)] == PREDICT_FIELDS, list(result)
    assert set(result) == set(PREDICT_FIELDS) | {"model", "image", "heatmap_url", "timings", "cached"}
    assert result["path"] == "photo.jpg" and result["cached"] is False
    assert result["image"] == {"sha256": hashlib.sha256(data).hexdigest(), "width": 160, "height": 120,
                               "format": "JPEG"}
    assert result["model"] == {"name": "stub", "version": "0", "digest": "stub0000", "backend": "stub"}
    assert {"decode_ms", "inference_ms", "batch_size", "queue_ms"} <= set(result["timings"])

    # Same bytes, same model: answered at once from the cache.
    again = backend.upload(data, "copy.jpg")
    assert again.status_code == 200
    cached = check(again, "/v1/analyze", "post")
    assert cached["cached"] is True and cached["path"] == "copy.jpg"
    assert {k: v for k, v in cached.items() if k not in ("cached", "path")} == \
           {k: v for k, v in result.items() if k not in ("cached", "path")}

    # The heatmap: keyed by sha256 and model digest, an RGBA overlay at the image's size.
    assert result["heatmap_url"] == f"/v1/heatmaps/stub0000/{result['image']['sha256']}.png"
    png = backend.client.get(result["heatmap_url"])
    assert png.status_code == 200 and png.mimetype == "image/png"
    overlay = Image.open(io.BytesIO(png.data))
    assert overlay.size == (160, 120) and overlay.mode == "RGBA"
    missing = backend.client.get(f"/v1/heatmaps/stub0000/{'0' * 64}.png")
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"

    # The uploaded bytes are gone once the job ended (retention).
    assert not list(backend.connection.scan_iter(backend.settings.key("blob", "*")))
    ttl = backend.connection.ttl(backend.settings.key("result", "stub0000", result["image"]["sha256"]))
    assert 0 < ttl <= backend.settings.cache_ttl

    unknown = backend.client.get("/jobs/does-not-exist")
    assert unknown.status_code == 404 and check(unknown, "/jobs/{job_id}")["code"] == "not_found"


def test_model_update_invalidates_cache(monkeypatch):
    first = backend_with()
    try:
        first.start_worker()
        data = image_bytes(100, 100, seed=11)
        job = first.upload(data).get_json()["job_id"]
        assert first.wait(job).get_json()["result"]["model"]["digest"] == "stub0000"
        assert first.upload(data).status_code == 200
    finally:
        first.stop()
    monkeypatch.setenv("GAMMA_STUB_DIGEST", "stub1111")   # a new model is deployed
    second = server_support.Backend(server_support.make_settings())
    try:
        second.start_worker()
        response = second.upload(data)
        assert response.status_code == 202                  # not the old model's result
        result = second.wait(response.get_json()["job_id"]).get_json()["result"]
        assert result["model"]["digest"] == "stub1111" and result["cached"] is False
        assert result["heatmap_url"].startswith("/v1/heatmaps/stub1111/")
        assert second.upload(data).get_json()["cached"] is True
    finally:
        second.stop()
        server_support.delete_keys()


def test_long_poll_returns_when_the_job_ends(backend):
    backend.publish_model()
    job = backend.upload(image_bytes(seed=5)).get_json()["job_id"]
    start = time.monotonic()
    queued = backend.client.get(f"/jobs/{job}?wait=1")
    assert queued.get_json()["status"] == "queued" and 0.9 < time.monotonic() - start < 3
    import threading

    threading.Timer(0.7, backend.start_worker).start()
    start = time.monotonic()
    done = backend.client.get(f"/jobs/{job}?wait=20")
    elapsed = time.monotonic() - start
    assert done.get_json()["status"] == "finished" and elapsed < 6
    bad = backend.client.get(f"/jobs/{job}?wait=soon")
    assert bad.status_code == 400 and bad.get_json()["code"] == "bad_request"


def test_long_poll_returns_when_the_job_fails(backend):
    backend.publish_model()
    data = image_bytes(300, 300, "JPEG", seed=4)
    job = backend.upload(data[:2000]).get_json()["job_id"]   # truncated: the job fails when it decodes
    import threading

    threading.Timer(0.7, backend.start_worker).start()
    start = time.monotonic()
    failed = backend.client.get(f"/jobs/{job}?wait=20")
    elapsed = time.monotonic() - start
    view = check(failed, "/jobs/{job_id}")
    assert view["status"] == "failed" and view["error"]["code"] == "image_decode_failed" and elapsed < 6
    assert view["ended_at"] and "result" not in view


def test_long_poll_of_a_canceled_job_returns_within_its_wake_up(backend):
    backend.publish_model()
    job = backend.upload(image_bytes(seed=10)).get_json()["job_id"]
    import threading

    threading.Timer(0.5, lambda: backend.client.delete(f"/jobs/{job}")).start()
    start = time.monotonic()
    view = backend.client.get(f"/jobs/{job}?wait=20").get_json()
    assert view["status"] == "canceled" and time.monotonic() - start < 4   # a cancel stores no Result


def test_long_poll_capped():
    b = backend_with(longpoll_max=1)
    try:
        b.publish_model()
        job = b.upload(image_bytes(seed=6)).get_json()["job_id"]
        start = time.monotonic()
        assert b.client.get(f"/jobs/{job}?wait=1").get_json()["status"] == "queued"
        assert time.monotonic() - start < 3
        over = b.client.get(f"/jobs/{job}?wait=100")   # beyond this server's limit: said, not silently cut
        assert over.status_code == 400 and "from 0 to 1" in check(over, "/jobs/{job_id}")["message"]
    finally:
        b.stop()
        server_support.delete_keys()


def test_wait_outside_its_documented_range_is_a_400(backend):
    backend.publish_model()
    job = backend.upload(image_bytes(seed=16)).get_json()["job_id"]
    schema = DOC["paths"]["/jobs/{job_id}"]["get"]["parameters"][1]["schema"]
    assert (schema["minimum"], schema["maximum"]) == (0, backend.settings.longpoll_max) == (0, 30)
    for wait in ("-1", "-0.01", "30.5", "31", "1e9", "nan", "inf", "-inf", "", "soon"):
        response = backend.client.get(f"/jobs/{job}", query_string={"wait": wait})
        assert response.status_code == 400, wait
        assert check(response, "/jobs/{job_id}")["code"] == "bad_request" and "from 0 to 30" in response.get_json()["message"]
    for wait in ("0", "0.0", "0.05"):   # the edges and inside it: answered
        assert backend.client.get(f"/jobs/{job}", query_string={"wait": wait}).get_json()["status"] == "queued"


@pytest.mark.parametrize("job_id", ["é", "jöb", "日本", "a" * 65, "a b", "a.b", "a:b", "a\nb", "a\n", "%00", "\u00a0"])
def test_a_malformed_job_id_is_a_404_never_a_500(backend, job_id):
    import urllib.parse

    path = "/jobs/" + urllib.parse.quote(job_id, safe="")
    for method in ("get", "delete"):
        response = getattr(backend.client, method)(path)
        assert response.status_code == 404, (method, job_id, response.get_data(as_text=True))
        assert check(response, "/jobs/{job_id}", method)["code"] == "not_found"
    import re

    # The document says so too (fullmatch: ECMA's "$", unlike Python's, never matches before a final newline).
    assert not re.fullmatch(DOC["paths"]["/jobs/{job_id}"]["get"]["parameters"][0]["schema"]["pattern"], job_id)
    assert backend.client.get("/jobs/" + "a" * 64).status_code == 404   # the longest valid id: only unknown


def test_the_server_refuses_what_the_document_forbids(backend):
    """Found by schemathesis (tests/test_schemathesis.py): the server takes no less strict a view than the schema."""
    backend.publish_model()
    c = backend.client
    for url in ("http://a b/x.png", "http://example.com/x.png\n", "http://example.com/é.png", "http://x/%zz",
                "http://example.com/" + "a" * 4096, "example.com/x.png"):   # not RFC 3986 or too long: no lookup
        response = c.post("/v1/analyze", json={"url": url})
        assert response.status_code == 422 and check(response, "/v1/analyze", "post")["code"] == "url_not_allowed", url
    # page_url may be null (the document says so), never longer than the limit
    refused = c.post("/v1/analyze", json={"url": "http://10.0.0.1/a.png", "page_url": None})
    assert refused.status_code == 422 and refused.get_json()["code"] == "url_not_allowed"
    too_long = c.post("/v1/analyze", json={"url": "http://10.0.0.1/a.png", "page_url": "https://p/" + "a" * 4096})
    assert too_long.status_code == 400 and check(too_long, "/v1/analyze", "post")["code"] == "bad_request"
    # a scan checks each URL on its own: a non-URI one is that image's error, not the page's
    scan = c.post("/v1/scan", json={"image_urls": ["http://a b/x.png"], "page_url": None})
    assert scan.status_code == 202
    backend.run_burst()
    images = c.get(scan.get_json()["status_url"]).get_json()["result"]["images"]
    assert [i["error"]["code"] for i in images] == ["url_not_allowed"]
    # a feedback sha256 with a final newline is not 64 hex digits; a null note is no note
    body = {"sha256": "ab" * 32, "result": {}, "label": "ai", "note": None}
    assert c.post("/v1/feedback", json=body).status_code == 201
    newline = c.post("/v1/feedback", json={**body, "sha256": "ab" * 32 + "\n"})
    assert newline.status_code == 400 and check(newline, "/v1/feedback", "post")["code"] == "bad_request"
    assert c.get(f"/v1/heatmaps/stub0000/{'0' * 64}\n.png").status_code == 404


@pytest.mark.parametrize("method, path, allowed", [
    ("get", "/v1/analyze", {"POST", "OPTIONS"}), ("put", "/v1/scan", {"POST", "OPTIONS"}),
    ("patch", "/jobs/abc", {"GET", "HEAD", "DELETE", "OPTIONS"}), ("post", "/healthz", {"GET", "HEAD", "OPTIONS"}),
    ("delete", "/v1/openapi.json", {"GET", "HEAD", "OPTIONS"}), ("post", "/metrics", {"GET", "HEAD", "OPTIONS"})])
def test_every_405_says_allow_and_is_a_json_error(backend, method, path, allowed):
    response = getattr(backend.client, method)(path)
    assert response.status_code == 405 and response.is_json
    assert response.get_json()["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_cancel(backend):
    backend.publish_model()
    job = backend.upload(image_bytes(seed=7)).get_json()["job_id"]
    canceled = backend.client.delete(f"/jobs/{job}")
    assert canceled.status_code == 200 and check(canceled, "/jobs/{job_id}", "delete")["status"] == "canceled"
    assert backend.client.get(f"/jobs/{job}").get_json()["status"] == "canceled"
    again = backend.client.delete(f"/jobs/{job}")
    assert again.status_code == 409 and check(again, "/jobs/{job_id}", "delete")["code"] == "conflict"
    assert backend.client.delete("/jobs/nope").status_code == 404
    assert not list(backend.connection.scan_iter(backend.settings.key("blob", "*")))
    backend.run_burst()
    assert backend.detector.calls == []                      # never scored
    assert backend.client.get(f"/jobs/{job}").get_json()["status"] == "canceled"


def test_a_cancel_racing_the_job_s_end_is_a_409_never_a_500(backend):
    """Found by schemathesis's stateful phase: DELETE just as the worker ended the job (a scan of refused URLs ends
    at once) met RQ's ValueError ("Execution ... not found in Redis") from Job.cancel: a 500."""
    from rq.job import JobStatus

    from gamma_detect.server.errors import ApiError

    backend.publish_model()
    job_id = backend.client.post("/v1/scan", json={"image_urls": ["http://10.0.0.1/a.png"]}).get_json()["job_id"]
    svc = backend.app.extensions["gamma"]
    job = svc.fetch_job(job_id)
    job.set_status(JobStatus.STARTED)   # a worker runs it, its attempt registered
    backend.connection.zadd(job.execution_registry.key, {"attempt0": time.time() + 60})
    executions = job.get_executions

    def worker_ends_it_meanwhile():   # between RQ reading `started` and fetching the attempt, the worker ends it
        job.set_status(JobStatus.FINISHED)
        return executions()

    job.get_executions = worker_ends_it_meanwhile
    with pytest.raises(ApiError) as raised:
        svc.cancel(job)
    assert (raised.value.code, raised.value.status) == ("conflict", 409) and "finished" in raised.value.message


def test_identical_requests_share_a_job(backend):
    backend.publish_model()
    data = image_bytes(seed=8)
    first, second = backend.upload(data).get_json(), backend.upload(data).get_json()
    assert first["job_id"] == second["job_id"] and second.get("shared") is True
    backend.run_burst()
    assert backend.detector.calls == [1]


def test_error_codes(backend, image_server):
    c = backend.client
    backend.publish_model()   # min_side 64 comes from the model's manifest

    def expect(response, code, status):
        assert response.status_code == status, response.get_json()
        assert check(response, "/v1/analyze", "post")["code"] == code
        return response

    big = backend_with(max_upload_bytes=10_000)
    try:
        expect(big.upload(image_bytes(300, 300, "PNG", seed=1)), "payload_too_large", 413)
    finally:
        big.stop()
    backend.publish_model()
    expect(c.post("/v1/analyze", data="hello", content_type="text/plain"), "unsupported_media_type", 415)
    expect(backend.upload(b"this is not an image at all", "a.txt"), "unsupported_media_type", 415)
    expect(backend.upload(b"", "empty.png"), "image_decode_failed", 422)
    png = bytearray(image_bytes(100, 100))
    png[png.index(b"IHDR") + 17] ^= 0xFF
    expect(backend.upload(bytes(png)), "image_decode_failed", 422)
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, "PNG")
    expect(backend.upload(bomb.getvalue()), "image_too_large", 422)
    expect(backend.upload(image_bytes(40, 300)), "image_too_small", 422)
    expect(c.post("/v1/analyze", json={"url": "http://10.0.0.1/a.png"}), "url_not_allowed", 422)
    expect(c.post("/v1/analyze", json={"url": "file:///etc/passwd"}), "url_not_allowed", 422)
    expect(c.post("/v1/analyze", json={"page_url": "x"}), "bad_request", 400)
    expect(c.post("/v1/analyze", data="{not json", content_type="application/json"), "bad_request", 400)
    expect(c.post("/v1/analyze", data={"other": "x"}, content_type="multipart/form-data"), "bad_request", 400)
    assert c.get("/v1/analyze").get_json()["code"] == "method_not_allowed"
    assert c.get("/nowhere").get_json()["code"] == "not_found"

    # Errors found only when the job runs: the job fails with the code.
    truncated = image_bytes(300, 300, "JPEG", seed=2)
    job_truncated = backend.upload(truncated[: len(truncated) // 2]).get_json()["job_id"]
    image_server.add("/gone.png", b"", status=404)
    job_gone = None
    local = backend_with(fetch_test_allow=image_server.allow, fetch_retries=0)
    try:
        local.publish_model()
        job_truncated = local.upload(truncated[: len(truncated) // 2]).get_json()["job_id"]
        job_gone = local.client.post("/v1/analyze", json={"url": image_server.url("/gone.png")}).get_json()["job_id"]
        local.run_burst()
        failed = local.client.get(f"/jobs/{job_truncated}")
        assert check(failed, "/jobs/{job_id}")["status"] == "failed"
        assert failed.get_json()["error"]["code"] == "image_decode_failed"
        gone = local.client.get(f"/jobs/{job_gone}").get_json()
        assert gone["status"] == "failed" and gone["error"]["code"] == "fetch_failed"
    finally:
        local.stop()


def test_url_analyze_and_url_cache(image_server):
    b = backend_with(fetch_test_allow=image_server.allow)
    try:
        data = image_bytes(120, 100, "WEBP", seed=21)
        url = image_server.add("/cat.webp", data, headers={"Content-Type": "image/webp"})
        b.publish_model()
        accepted = b.client.post("/v1/analyze", json={"url": url, "page_url": "https://example.com/page"})
        assert accepted.status_code == 202
        b.run_burst()   # in this process, so that b.detector counts the images scored
        result = b.wait(accepted.get_json()["job_id"]).get_json()["result"]
        assert result["path"] == url and result["image"]["format"] == "WEBP" and "fetch_ms" in result["timings"]
        fetches = len(image_server.seen)
        again = b.client.post("/v1/analyze", json={"url": url})
        assert again.status_code == 200 and again.get_json()["cached"] is True
        assert len(image_server.seen) == fetches           # the popular URL is not fetched again
        mirror = image_server.add("/mirror.webp", data)   # same bytes elsewhere: fetched, not re-scored
        job = b.client.post("/v1/analyze", json={"url": mirror}).get_json()["job_id"]
        b.run_burst()
        assert b.wait(job).get_json()["status"] == "finished"
        mirrored = b.client.get(f"/jobs/{job}").get_json()["result"]
        assert sum(b.detector.calls) == 1 and mirrored["cached"] is True and mirrored["path"] == mirror
        ttl = b.connection.ttl(b.settings.key("url", hashlib.sha256(url.encode()).hexdigest()))
        assert 0 < ttl <= b.settings.url_ttl
    finally:
        b.stop()
        server_support.delete_keys()


def test_scan(image_server):
    b = backend_with(fetch_test_allow=image_server.allow, fetch_retries=0)
    try:
        b.start_worker()
        cached_url = image_server.add("/1.png", image_bytes(100, 90, seed=31))
        first = b.client.post("/v1/analyze", json={"url": cached_url}).get_json()["job_id"]
        b.wait(first)
        fresh = image_server.add("/2.png", image_bytes(110, 90, seed=32))
        broken = image_server.add("/3.png", b"", status=500)
        urls = [cached_url, fresh, "http://192.168.1.1/x.png", broken, fresh]
        accepted = b.client.post("/v1/scan", json={"page_url": "https://example.com/p", "image_urls": urls})
        assert accepted.status_code == 202 and check(accepted, "/v1/scan", "post")["images"] == 5
        view = b.wait(accepted.get_json()["job_id"], 20)
        scan = check(view, "/jobs/{job_id}")
        assert scan["status"] == "finished" and scan["kind"] == "scan"
        images = scan["result"]["images"]
        assert [i["url"] for i in images] == urls
        assert [i["status"] for i in images] == ["finished", "finished", "failed", "failed", "finished"]
        assert images[0]["result"]["cached"] is True and images[1]["result"]["cached"] is False
        assert images[2]["error"]["code"] == "url_not_allowed" and images[3]["error"]["code"] == "fetch_failed"
        assert scan["result"]["counts"] == {"finished": 3, "failed": 2}
        bad = b.client.post("/v1/scan", json={"image_urls": []})
        assert bad.status_code == 400
    finally:
        b.stop()
        server_support.delete_keys()


def test_feedback_stored_and_exported(backend):
    sha = "ab" * 32
    body = {"sha256": sha, "result": {"verdict": "ai", "ai_probability": 0.9}, "label": "real", "note": "my photo"}
    stored = backend.client.post("/v1/feedback", json=body)
    assert stored.status_code == 201 and check(stored, "/v1/feedback", "post")["status"] == "stored"
    for bad in ({**body, "label": "maybe"}, {**body, "sha256": "xyz"}, {**body, "result": "x"}, [1]):
        response = backend.client.post("/v1/feedback", json=bad)
        assert response.status_code == 400 and check(response, "/v1/feedback", "post")["code"] == "bad_request"
    out = io.StringIO()
    assert feedback.export(backend.connection, backend.settings, out) == 1
    record = json.loads(out.getvalue())
    assert record["sha256"] == sha and record["label"] == "real" and record["note"] == "my photo"
    assert record["result"] == body["result"]
    assert backend.connection.ttl(feedback.stream_key(backend.settings)) == -1   # kept, never expires


def test_metrics_exposition(backend):
    backend.publish_model()
    backend.upload(image_bytes(seed=41))
    backend.client.get("/jobs/nope")
    text = backend.client.get("/metrics").get_data(as_text=True)
    assert "# TYPE gamma_http_requests_total counter" in text
    assert 'gamma_http_requests_total{endpoint="/jobs/<job_id>",method="GET",status="404"} 1.0\n' in text
    assert "# TYPE gamma_http_request_duration_seconds histogram" in text
    assert 'gamma_queue_depth{queue="inference"} 1.0\n' in text
    assert 'gamma_cache_lookups_total{result="miss"} 1.0\n' in text
    assert "gamma_workers_alive 0.0\n" in text
    backend.run_burst()
    text = backend.client.get("/metrics").get_data(as_text=True)
    assert "gamma_batch_size_count 1.0\n" in text and 'gamma_queue_depth{queue="inference"} 0.0\n' in text
    for line in text.splitlines():   # every sample line is `name{labels} number`
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_cors_only_for_configured_origins():
    b = backend_with(allowed_origins="chrome-extension://abcdef")
    try:
        ok = b.client.get("/healthz", headers={"Origin": "chrome-extension://abcdef"})
        assert ok.headers["Access-Control-Allow-Origin"] == "chrome-extension://abcdef"
        other = b.client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
        preflight = b.client.options("/v1/analyze", headers={"Origin": "chrome-extension://abcdef",
                                                             "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 204 and "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    finally:
        b.stop()
        server_support.delete_keys()
