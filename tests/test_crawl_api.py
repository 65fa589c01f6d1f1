"""POST /v1/scan/bytes (SCAN_BYTES_ENDPOINT): a crawl's archived bytes as one scan job, and what it refuses."""

import io

import server_support
from server_support import backend, backend_with  # noqa: F401
from test_server_api import check

from gamma_detect.contract import SCAN_BYTES_ENDPOINT
from gamma_detect.files import sha256_bytes
from stub_detector import image_bytes


def post(client, parts: list[tuple[str, bytes]], field: str = "image"):
    return client.post(SCAN_BYTES_ENDPOINT, data={field: [(io.BytesIO(data), label) for label, data in parts]},
                       content_type="multipart/form-data")


def test_scan_bytes_one_job_for_the_batch(backend):
    backend.publish_model()
    a, b = image_bytes(seed=61), image_bytes(seed=62)
    accepted = post(backend.client, [("a", a), ("b", b), ("text", b"not an image"), ("a-again", a)])
    assert accepted.status_code == 202 and check(accepted, SCAN_BYTES_ENDPOINT, "post")["images"] == 4
    backend.run_burst()
    view = check(backend.wait(accepted.get_json()["job_id"], 10), "/jobs/{job_id}")
    assert view["status"] == "finished" and view["kind"] == "scan"
    images = view["result"]["images"]
    assert [i["url"] for i in images] == ["a", "b", "text", "a-again"]
    assert [i["status"] for i in images] == ["finished", "finished", "failed", "finished"]
    assert images[0]["result"]["image"]["sha256"] == sha256_bytes(a) == images[3]["result"]["image"]["sha256"]
    assert images[2]["error"]["code"] == "unsupported_media_type"
    # The same bytes again: answered from the cache inside the scan job, no new image job.
    again = post(backend.client, [("b", b)])
    backend.run_burst()
    [cached] = backend.wait(again.get_json()["job_id"], 10).get_json()["result"]["images"]
    assert cached["result"]["cached"] is True and "job_id" not in cached


def test_scan_bytes_refusals(backend):
    as_json = backend.client.post(SCAN_BYTES_ENDPOINT, json={"images": []})
    assert as_json.status_code == 415 and check(as_json, SCAN_BYTES_ENDPOINT, "post")["code"] == "unsupported_media_type"
    none = post(backend.client, [("x", image_bytes())], field="picture")
    assert none.status_code == 400 and "`image` part" in none.get_json()["message"]
    small = backend_with(max_scan_images=2)
    try:
        many = post(small.client, [(str(i), image_bytes(seed=i)) for i in range(3)])
        assert many.status_code == 400 and "at most 2 images" in check(many, SCAN_BYTES_ENDPOINT, "post")["message"]
    finally:
        server_support.delete_keys()
