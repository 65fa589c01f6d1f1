"""WARC records (warcio): the captures of a file for the index, one record's payload read by its offset.

warcio, not FastWARC: FastWARC reads about 2.5x faster (bench/warc_scan.py --readers), but it ends a file at a
truncated gzip member without a word, and reading is a few per cent of a scan's time (decoding and inference
are the rest). warcio ends there silently too, so ``captures`` checks that the last record ends where the file
does. warcio undoes chunked transfer and gzip/deflate/brotli content encodings in ``content_stream``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from typing import Iterator

from warcio.archiveiterator import ArchiveIterator

from .urls import strip_brackets

# The record types that hold what a page showed; warcinfo, request, metadata and resource (GNU Wget's log and
# arguments, crawler screenshots) are not captures of a URL's response.
CAPTURE_TYPES = ("response", "revisit")
SNIFF_BYTES = 4096
TAIL_SLACK = 4


class CrawlInputError(ValueError):
    """An input file that is neither a WARC (plain or gzip) nor the scan's JSONL."""


@dataclass(frozen=True)
class ArchiveError:
    """A place in a WARC file that could not be read; ``code`` is one of the contract's CRAWL_ERRORS."""
    file: str
    offset: int
    code: str
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "message": f"{self.file} at offset {self.offset}: {self.message}",
                "warc_file": self.file, "offset": self.offset}


class RecordError(Exception):
    def __init__(self, error: ArchiveError):
        super().__init__(error.to_dict()["message"])
        self.error = error


@dataclass(frozen=True)
class Capture:
    """One response or revisit record, as the index keeps it."""
    file: str
    offset: int
    type: str
    uri: str
    record_id: str
    date: str
    status: int | None
    mime: str
    location: str | None
    digest: str | None
    refers_to: str | None
    refers_uri: str | None
    refers_date: str | None


def input_kind(path: str) -> str:
    """``"warc"`` or ``"jsonl"``, from the content (a gzip member holding ``WARC/``, ``WARC/``, or ``{``)."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(16)
        except (OSError, EOFError, zlib.error) as exc:   # zlib.error: a corrupt deflate stream
            raise CrawlInputError(f"{path}: a gzip file that cannot be read ({exc})") from exc
    if head.startswith(b"WARC/"):
        return "warc"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "jsonl"
    raise CrawlInputError(f"{path}: neither a WARC file (plain or .gz) nor JSONL of {{\"page_url\", \"image_urls\"}} "
                          "pages; give `gamma scan` WARC files, a folder of them, or that JSONL")


def _capture(path: str, offset: int, record) -> Capture:
    header = record.rec_headers.get_header
    http = record.http_headers
    status = mime = location = None
    if http is not None and http.protocol.upper().startswith("HTTP/"):
        try:
            status = int(http.get_statuscode())
        except (TypeError, ValueError):
            status = None
        if status is not None and not 100 <= status <= 999:   # HTTP's three digits (SQLite takes 64 bits only)
            status = None
        mime = (http.get_header("Content-Type") or "").split(";", 1)[0].strip().lower()
        location = http.get_header("Location")
    refers = header("WARC-Refers-To")
    return Capture(path, offset, record.rec_type, strip_brackets(header("WARC-Target-URI") or ""),
                   header("WARC-Record-ID") or "", header("WARC-Date") or "", status, mime or "", location,
                   header("WARC-Payload-Digest"), refers, header("WARC-Refers-To-Target-URI"),
                   header("WARC-Refers-To-Date"))


def captures(path: str) -> Iterator[Capture | ArchiveError]:
    """Every response and revisit record of a file with its offset; an ArchiveError where reading stops."""
    size = os.path.getsize(path)
    start = end = 0
    with open(path, "rb") as handle:
        iterator = ArchiveIterator(handle, check_digests=False)
        try:
            for record in iterator:
                offset = iterator.get_record_offset()   # reads the record to its end (its headers are kept)
                if iterator.get_record_length() < 0:   # Content-Length: -N (warcio's offsets past it mean nothing)
                    yield ArchiveError(path, offset, "warc_unreadable", "the record's Content-Length is negative")
                    return
                start, end = offset, offset + iterator.get_record_length()
                if record.rec_type in CAPTURE_TYPES:
                    uri = strip_brackets(record.rec_headers.get_header("WARC-Target-URI") or "")
                    if uri.lower().startswith(("http:", "https:")):
                        yield _capture(path, offset, record)
        except Exception as exc:  # noqa: BLE001 - warcio raises many kinds for a broken record
            yield ArchiveError(path, end, "warc_unreadable", f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        handle.seek(end)
        tail = handle.read(TAIL_SLACK)
        complete = _member_complete(handle, start, end)
    # An uncompressed record's length leaves out its closing CRLF CRLF; nothing else may follow the last record.
    if not complete:
        yield ArchiveError(path, start, "warc_unreadable",
                           "the record's gzip member is truncated or corrupt (the file was cut short or damaged)")
    elif size - end > TAIL_SLACK or tail.strip(b"\r\n"):
        yield ArchiveError(path, end, "warc_unreadable",
                           f"{size - end} bytes after the last complete record could not be read "
                           "(a truncated gzip member or a record whose declared length is wrong)")


def _member_complete(handle, start: int, end: int) -> bool:
    """Whether the gzip member at [start, end) reaches its end intact (warcio yields a truncated or corrupt last
    member's record as if whole); True for an uncompressed record. Decompressed a megabyte at a time, the output
    dropped."""
    handle.seek(start)
    if handle.read(2) != b"\x1f\x8b":
        return True
    handle.seek(start)
    member = zlib.decompressobj(wbits=31)
    remaining = end - start
    while remaining > 0 and not member.eof:
        data = handle.read(min(1 << 20, remaining))
        if not data:
            break
        remaining -= len(data)
        while data and not member.eof:
            try:
                member.decompress(data, 1 << 20)
            except zlib.error:   # a bad CRC or deflate stream past what warcio read
                return False
            data = member.unconsumed_tail
    return member.eof


def read_payload(path: str, offset: int, max_bytes: int) -> bytes:
    """The HTTP payload of the record at ``offset``, transfer and content encodings undone.
    Raises RecordError (warc_unreadable) and OverflowError when it holds more than ``max_bytes``."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            record = next(iter(ArchiveIterator(handle, check_digests=False)))
            data = record.content_stream().read(max_bytes + 1)
    except Exception as exc:  # noqa: BLE001 - as in captures: one clear error for whatever broke
        raise RecordError(ArchiveError(path, offset, "warc_unreadable",
                                       f"{type(exc).__name__}: {str(exc)[:200]}")) from exc
    if len(data) > max_bytes:
        raise OverflowError(f"the payload is larger than {max_bytes} bytes")
    return data
