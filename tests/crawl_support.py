"""Test crawls: WARC files written with warcio, and a small site (pages using every image reference form)
for GNU Wget to crawl into one."""

from __future__ import annotations

import base64
import hashlib
import io

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from stub_detector import image_bytes

DATE = "2026-01-02T03:04:05Z"


class WarcBuilder:
    """Records appended to one WARC file; each method returns the record's offset."""

    def __init__(self, path, gzip: bool = True, warc_version: str = "WARC/1.1"):
        self.path = str(path)
        self.handle = open(path, "wb")
        self.writer = WARCWriter(self.handle, gzip=gzip, warc_version=warc_version)

    def close(self) -> None:
        self.handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, record) -> int:
        offset = self.handle.tell()
        self.writer.write_record(record)
        return offset

    def response(self, uri: str, body: bytes, content_type: str = "text/html", status: str = "200 OK",
                 headers: list | None = None, date: str = DATE, raw: bool = False) -> int:
        """``raw``: ``body`` is already the HTTP payload as sent (chunked, encoded); headers say how."""
        http = StatusAndHeaders(status, [("Content-Type", content_type), *(headers or [])], protocol="HTTP/1.1")
        return self._write(self.writer.create_warc_record(uri, "response", payload=io.BytesIO(body),
                                                          http_headers=http, warc_headers_dict={"WARC-Date": date}))

    def revisit(self, uri: str, original_uri: str, original_date: str, digest: str, date: str = DATE) -> int:
        http = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
        record = self.writer.create_revisit_record(uri, digest, original_uri, original_date, http_headers=http)
        record.rec_headers.replace_header("WARC-Date", date)
        return self._write(record)

    def metadata(self, uri: str, text: bytes) -> int:
        return self._write(self.writer.create_warc_record(uri, "metadata", payload=io.BytesIO(text),
                                                          warc_content_type="text/plain"))

    def resource(self, uri: str, text: bytes) -> int:
        return self._write(self.writer.create_warc_record(uri, "resource", payload=io.BytesIO(text),
                                                          warc_content_type="text/plain"))


def chunked(body: bytes, size: int = 100) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def digest_of(body: bytes) -> str:
    """A WARC payload digest (sha1, base32), as revisit records name their original by."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode()


def reference_forms_page(prefix: str = "") -> str:
    """A page that uses every reference form, each for its own image (``prefix`` before each path)."""
    return f"""<!doctype html><html><head><base href="{prefix}/img/">
<meta property="og:image" content="og.png"><meta name="twitter:image" content="tw.png"></head><body>
<img src="src.png" alt=""><img srcset="set1.png 1x, set2.png 2x">
<img data-src="lazy.png" data-srcset="lazyset.png 320w">
<picture><source srcset="pic.png"><img src="pic-fallback.png"></picture>
<noscript><img src="noscript.png"></noscript><div style="background-image: url('bg.png')">x</div>
<img src="data:image/png;base64,{base64.b64encode(image_bytes(80, 72, seed=99)).decode()}">
</body></html>"""


FORM_IMAGES = ("og.png", "tw.png", "src.png", "set1.png", "set2.png", "lazy.png", "lazyset.png", "pic.png",
               "pic-fallback.png", "noscript.png", "bg.png")
