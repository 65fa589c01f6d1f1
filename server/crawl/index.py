"""The first pass: every capture of a crawl in an on-disk SQLite index (URI -> file, offset, status, digest, ...).

Pages, their images and revisits come in any order and in any file of a crawl; the second pass looks each
reference up here and reads its payload by offset, so memory stays bounded whatever the crawl's size.
A file already indexed with the same size and modification time is not read again (``--index PATH`` reuses it).
"""

from __future__ import annotations

import os
import sqlite3
from typing import Callable, Iterator

from .urls import normalize
from .warc import ArchiveError, Capture, captures

_FIELDS = ("file", "offset", "type", "uri", "record_id", "date", "status", "mime", "location", "digest",
           "refers_to", "refers_uri", "refers_date")
_COLUMNS = ", ".join(f"{f} {'INTEGER' if f in ('offset', 'status') else 'TEXT'}" for f in _FIELDS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS captures (key TEXT NOT NULL, {_COLUMNS});
CREATE INDEX IF NOT EXISTS captures_key ON captures (key);
CREATE INDEX IF NOT EXISTS captures_digest ON captures (digest);
CREATE INDEX IF NOT EXISTS captures_record ON captures (record_id);
CREATE TABLE IF NOT EXISTS files (file TEXT PRIMARY KEY, size INTEGER, mtime REAL);
CREATE TABLE IF NOT EXISTS errors (file TEXT, offset INTEGER, code TEXT, message TEXT);
"""
_SELECT = f"SELECT {', '.join(_FIELDS)} FROM captures"
# The archived HTML pages: 2xx responses.
_PAGES = "type = 'response' AND status BETWEEN 200 AND 299 AND mime IN ('text/html', 'application/xhtml+xml')"
# The capture nearest in time to the page's own (a crawl may hold a URL several times); a response before a revisit.
_NEAREST = "ORDER BY abs(julianday(date) - julianday(?)), type = 'revisit', file, offset LIMIT 1"


class CrawlIndex:
    def __init__(self, path: str):
        self.db = sqlite3.connect(path)
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, warc_file: str, progress: Callable[[int], None] | None = None) -> list[ArchiveError]:
        """Index one WARC file (once per size and mtime); the places where reading it stopped."""
        warc_file = os.path.abspath(warc_file)
        stat = os.stat(warc_file)
        known = self.db.execute("SELECT size, mtime FROM files WHERE file = ?", (warc_file,)).fetchone()
        if known != (stat.st_size, stat.st_mtime):
            with self.db:
                for table in ("captures", "errors", "files"):
                    self.db.execute(f"DELETE FROM {table} WHERE file = ?", (warc_file,))
                for item in captures(warc_file):
                    if isinstance(item, ArchiveError):
                        self.db.execute("INSERT INTO errors VALUES (?, ?, ?, ?)",
                                        (item.file, item.offset, item.code, item.message))
                        continue
                    self.db.execute(f"INSERT INTO captures VALUES ({', '.join('?' * (len(_FIELDS) + 1))})",
                                    (normalize(item.uri), *(getattr(item, f) for f in _FIELDS)))
                    if progress:
                        progress(1)
                self.db.execute("INSERT INTO files VALUES (?, ?, ?)", (warc_file, stat.st_size, stat.st_mtime))
        return self.errors(warc_file)

    def errors(self, warc_file: str | None = None) -> list[ArchiveError]:
        query = "SELECT file, offset, code, message FROM errors" + (" WHERE file = ?" if warc_file else "")
        return [ArchiveError(*row) for row in self.db.execute(query, (warc_file,) if warc_file else ())]

    def nearest(self, uri: str, date: str) -> Capture | None:
        row = self.db.execute(f"{_SELECT} WHERE key = ? {_NEAREST}", (normalize(uri), date)).fetchone()
        return Capture(*row) if row else None

    def original(self, revisit: Capture) -> Capture | None:
        """The response a revisit record stands for: same payload digest (any file), else the record it names."""
        for column, value in (("digest", revisit.digest), ("record_id", revisit.refers_to)):
            if value:
                row = self.db.execute(f"{_SELECT} WHERE {column} = ? AND type = 'response' {_NEAREST}",
                                      (value, revisit.date)).fetchone()
                if row:
                    return Capture(*row)
        if revisit.refers_uri:
            row = self.db.execute(f"{_SELECT} WHERE key = ? AND type = 'response' {_NEAREST}",
                                  (normalize(revisit.refers_uri), revisit.refers_date or revisit.date)).fetchone()
            return Capture(*row) if row else None
        return None

    def page_count(self) -> int:
        return self.db.execute(f"SELECT count(*) FROM captures WHERE {_PAGES}").fetchone()[0]

    def pages(self, warc_file: str | None = None) -> Iterator[Capture]:
        """The archived HTML pages (2xx responses) of the crawl or of one file, in file and record order."""
        query, args = f"{_SELECT} WHERE {_PAGES}", ()
        if warc_file:
            query, args = query + " AND file = ?", (os.path.abspath(warc_file),)
        yield from (Capture(*row) for row in self.db.execute(query + " ORDER BY file, offset", args))
