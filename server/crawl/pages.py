"""The second pass: each archived HTML page with its image references, resolved through the index.

A reference is resolved to the record that holds its bytes: archived 3xx chains followed, revisit records
replaced by the response they stand for (found by payload digest, possibly in another file). What the archive
lacks is ``not_archived``; a non-2xx capture is ``archived_error`` with its HTTP status. Payloads are read by
offset only when the driver asks (``ImageRef.read``), so a page's references hold no image bytes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import unquote_to_bytes

from .html import TooDeep, image_references
from .index import CrawlIndex
from .urls import join
from .warc import ArchiveError, Capture, RecordError, read_payload

MAX_REDIRECTS = 10
DATA_URL_SHOWN = 64   # characters of a data: URL kept as its entry's `url`


@dataclass
class ImageRef:
    url: str
    status: str | None = None         # None: bytes to score (capture or data); else a CRAWL_STATUSES value
    capture: Capture | None = None    # the record holding the bytes (or, for archived_error, the error's record)
    http_status: int | None = None
    data: bytes | None = None         # a data: URL's bytes
    error: dict | None = None

    def read(self, max_bytes: int) -> bytes:
        """The archived bytes (RecordError for an unreadable record, OverflowError over ``max_bytes``)."""
        if self.data is not None:
            if len(self.data) > max_bytes:
                raise OverflowError(f"the data: URL holds more than {max_bytes} bytes")
            return self.data
        return read_payload(self.capture.file, self.capture.offset, max_bytes)


@dataclass
class Page:
    url: str
    capture: Capture
    images: list[ImageRef] = field(default_factory=list)
    error: dict | None = None   # the page could not be read (its images are then unknown)


def _data_url(url: str, page: Capture) -> ImageRef:
    shown = url if len(url) <= DATA_URL_SHOWN else url[:DATA_URL_SHOWN] + "..."
    header, comma, payload = url[5:].partition(",")
    try:
        if not comma:
            raise ValueError("no comma after the media type")
        data = unquote_to_bytes(payload)
        if header.lower().endswith(";base64"):
            data = base64.b64decode(b"".join(data.split()), validate=True)
    except (ValueError, binascii.Error) as exc:
        return ImageRef(shown, "failed", page, error={"code": "bad_data_url", "message": f"bad data: URL ({exc})"})
    return ImageRef(shown, None, page, data=data)


def resolve(index: CrawlIndex, url: str, date: str) -> ImageRef:
    """Where the archive holds ``url`` as of ``date``: its record, or why there is none."""
    current, seen = url, set()
    for _ in range(MAX_REDIRECTS + 1):
        capture = index.nearest(current, date)
        if capture is None:
            return ImageRef(url, "not_archived")
        if capture.record_id in seen:
            break
        seen.add(capture.record_id)
        status, holder = capture.status, capture
        if capture.type == "revisit":
            holder = index.original(capture)
            if holder is None:
                return ImageRef(url, "failed", capture, status, error={
                    "code": "revisit_unresolved", "message": f"the revisit record {capture.record_id} "
                    f"({capture.file} at offset {capture.offset}) names a payload that is not in the crawl"})
            status = status or holder.status
        if status is not None and 300 <= status < 400 and capture.location:
            current = join(capture.uri, capture.location.strip())
            if current is not None:   # else a Location no client could follow: the archived 3xx is the answer
                continue
        if status is not None and 200 <= status < 300:
            return ImageRef(url, None, holder, status)
        return ImageRef(url, "archived_error", capture, status)
    return ImageRef(url, "failed", capture, capture.status, error={
        "code": "too_many_redirects", "message": f"the archived redirects from {url} loop or exceed {MAX_REDIRECTS}"})


def pages(index: CrawlIndex, *, max_html_bytes: int, warc_file: str | None = None) -> Iterator[Page]:
    """Every archived HTML page of the index (or of one of its files) with its image references."""
    for capture in index.pages(warc_file):
        page = Page(capture.uri, capture)
        try:
            html = read_payload(capture.file, capture.offset, max_html_bytes)
        except RecordError as exc:
            page.error = exc.error.to_dict()
        except OverflowError as exc:
            page.error = ArchiveError(capture.file, capture.offset, "html_too_large", str(exc)).to_dict()
        else:
            try:
                references = image_references(html, capture.uri)
            except TooDeep as exc:
                page.error = ArchiveError(capture.file, capture.offset, "html_too_deep", str(exc)).to_dict()
                references = []
            for url in references:
                page.images.append(_data_url(url, capture) if url[:5].lower() == "data:" else
                                   resolve(index, url, capture.date))
        yield page
