"""One file field out of a multipart/form-data body, found with byte searches.

Werkzeug's form parser compiles two regular expressions for every new boundary (``MultipartDecoder``, 0.37 ms
here), and clients pick a random boundary per request; with the parse into a spooled file it cost about 1 ms of
GIL-holding Python per cached upload, a third of the request's CPU (measured in README.md, "Load benchmark").
The body is already in memory (bounded by ``MAX_CONTENT_LENGTH``), so the part is found with ``bytes.find``
and copied once; the part headers are read with Werkzeug's header parser.
"""

from __future__ import annotations

from typing import Iterator

from werkzeug.http import parse_options_header

from .errors import ApiError


def file_field(body: bytes, boundary: str, name: str) -> tuple[bytes, str | None] | None:
    """The bytes and file name of the first part named ``name``, or None when the body has no such part.
    Raises ``bad_request`` for a body that is not multipart with this boundary (no closing delimiter...)."""
    return next(file_fields(body, boundary, name), None)


def file_fields(body: bytes, boundary: str, name: str) -> Iterator[tuple[bytes, str | None]]:
    """The bytes and file name of every part named ``name``, in order (parsed as they are taken)."""
    # ASCII, as RFC 2046 defines it: an RFC 2231 parameter (boundary*=UTF-8''%E2%82%AC) decodes to any character.
    if not boundary or len(boundary) > 200 or not boundary.isascii():
        raise ApiError("bad_request", "the multipart body needs a boundary parameter of 1 to 200 ASCII characters")
    delimiter = b"--" + boundary.encode("ascii")
    start = body.find(delimiter)
    if start < 0:
        raise ApiError("bad_request", "the multipart body does not contain its boundary")
    position = start + len(delimiter)
    while not body.startswith(b"--", position):   # "--boundary--" closes the body
        head_end = body.find(b"\r\n\r\n", position)
        # From the headers' last CRLF: an empty part written without its own CRLF (Werkzeug's test client) ends there.
        following = body.find(b"\r\n" + delimiter, head_end + 2) if head_end >= 0 else -1
        if following < 0:
            raise ApiError("bad_request", "the multipart body is truncated (a part has no closing boundary)")
        headers = _headers(body[position:head_end])
        disposition, options = parse_options_header(headers.get("content-disposition", ""))
        if disposition == "form-data" and options.get("name") == name:
            yield body[head_end + 4:max(following, head_end + 4)], options.get("filename")
        position = following + 2 + len(delimiter)


def _headers(block: bytes) -> dict[str, str]:
    headers = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return headers
