"""server/multipart.py: the upload's file field found without Werkzeug's per-boundary regexes."""

import hashlib

import pytest
from server_support import backend  # noqa: F401

from gamma_detect.server.errors import ApiError
from gamma_detect.server.multipart import file_field

BOUNDARY = "b0undary-1234"


def body(*parts: tuple[str, bytes], boundary: str = BOUNDARY, close: bool = True) -> bytes:
    out = b"preamble to ignore\r\n"
    for headers, content in parts:
        out += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


def test_finds_the_named_file_part_among_others():
    data = b"\xff\xd8\xff" + bytes(range(256)) * 40 + b"\r\n-- not the boundary\r\n"
    raw = body(('Content-Disposition: form-data; name="note"', b"hello"),
               ('Content-Disposition: form-data; name="image"; filename="photo.jpg"\r\nContent-Type: image/jpeg', data))
    assert file_field(raw, BOUNDARY, "image") == (data, "photo.jpg")


def test_empty_file_and_rfc2231_file_name():
    raw = body(("Content-Disposition: form-data; name=\"image\"; filename*=UTF-8''caf%C3%A9.png", b""))
    assert file_field(raw, BOUNDARY, "image") == (b"", "café.png")


def test_an_empty_part_without_its_crlf_is_empty():
    raw = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="e.png"\r\n\r\n--{BOUNDARY}--\r\n'
    assert file_field(raw.encode(), BOUNDARY, "image") == (b"", "e.png")


def test_a_body_without_the_field_gives_none():
    raw = body(('Content-Disposition: form-data; name="other"', b"x"), ("Content-Type: text/plain", b"no disposition"))
    assert file_field(raw, BOUNDARY, "image") is None


@pytest.mark.parametrize("raw, boundary", [
    (body(('Content-Disposition: form-data; name="image"', b"abc")), ""),                     # no boundary parameter
    (body(('Content-Disposition: form-data; name="image"', b"abc")), "x" * 201),              # boundary too long
    (body(('Content-Disposition: form-data; name="image"', b"abc")), "another-boundary"),     # not this body's
    (body(('Content-Disposition: form-data; name="image"', b"abc"), close=False)[:-9], BOUNDARY),  # truncated
    (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"".encode(), BOUNDARY),  # headers never end
])
def test_malformed_bodies_are_bad_requests(raw, boundary):
    with pytest.raises(ApiError) as caught:
        file_field(raw, boundary, "image")
    assert caught.value.code == "bad_request"


def test_the_api_reads_uploads_with_it(backend):  # noqa: F811 - the fixture
    from stub_detector import image_bytes

    backend.publish_model()
    data = image_bytes(160, 120, "JPEG", seed=5)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    ok = backend.client.post("/v1/analyze", data=body(
        ('Content-Disposition: form-data; name="image"; filename="C:\\pics\\cat.jpg"', data)), headers=headers)
    assert ok.status_code == 202
    backend.run_burst()
    done = backend.wait(ok.get_json()["job_id"]).get_json()
    assert done["result"]["path"] == "cat.jpg"
    assert done["result"]["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    truncated = backend.client.post("/v1/analyze", data=body(('Content-Disposition: form-data; name="image"', data),
                                                             close=False)[:-9], headers=headers)
    assert truncated.status_code == 400 and truncated.get_json()["code"] == "bad_request"
