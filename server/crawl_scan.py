"""Scan WARC crawls: every archived image of every archived page scored from its archived bytes.

Two passes over the crawl (server/crawl): the index, then the pages. Images are deduplicated by sha256 across
the crawl (one inference each, every page showing one gets its result) and scored in batches by a scorer:
``LocalScorer`` in process (the configured model, ``GAMMA_VARIANT``), or ``ServerScorer`` through the API's
batch endpoint for bytes (crawl_scorers.py). Reading the next pages overlaps the running batch. Output: one JSONL line per page
(and ``--parquet``: one row per page and image), each written to a temporary file renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from gamma_detect.contract import LIMITS
from gamma_detect.files import atomic_path, sha256_bytes

from .crawl.index import CrawlIndex
from .crawl.pages import ImageRef, Page, pages
from .crawl.warc import ArchiveError, RecordError
from .crawl_output import ParquetOut
from .crawl_scorers import LocalScorer, Outcome, Scorer, ServerScorer
from .errors import ApiError


@dataclass
class ScanOptions:
    out: str
    parquet: str | None = None
    index: str | None = None            # keep the capture index here (reused when the files are unchanged)
    max_html_bytes: int = 16 * 1024 * 1024
    max_image_bytes: int = LIMITS["upload_bytes"]
    fetch_missing: Callable[[str], bytes] | None = None   # fetches a not-archived image at scan time
    progress: bool = True


# --------------------------------------------------------------------------- results of a crawl
class Outcomes:
    """sha256 -> outcome, and a record's sha256, on disk: a crawl's unique images need not fit in memory."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path)
        self.db.executescript("CREATE TABLE IF NOT EXISTS outcomes (sha256 TEXT PRIMARY KEY, outcome TEXT);"
                              "CREATE TABLE IF NOT EXISTS payloads (file TEXT, offset INTEGER, sha256 TEXT,"
                              " PRIMARY KEY (file, offset));")

    def get(self, sha: str) -> Outcome | None:
        row = self.db.execute("SELECT outcome FROM outcomes WHERE sha256 = ?", (sha,)).fetchone()
        return json.loads(row[0]) if row else None

    def has(self, sha: str) -> bool:
        return self.db.execute("SELECT 1 FROM outcomes WHERE sha256 = ?", (sha,)).fetchone() is not None

    def put(self, outcomes: dict[str, Outcome]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?)",
                                [(sha, json.dumps(o, ensure_ascii=False)) for sha, o in outcomes.items()])

    def payload_sha(self, file: str, offset: int) -> str | None:
        row = self.db.execute("SELECT sha256 FROM payloads WHERE file = ? AND offset = ?", (file, offset)).fetchone()
        return row[0] if row else None

    def remember_payload(self, file: str, offset: int, sha: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO payloads VALUES (?, ?, ?)", (file, offset, sha))


@dataclass
class Summary:
    pages: int = 0
    page_errors: int = 0
    images: int = 0
    unique_images: int = 0
    statuses: Counter = field(default_factory=Counter)
    verdicts: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    archive_errors: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """Something could not be read or scored (not_archived and archived_error describe the crawl)."""
        return bool(self.archive_errors or self.page_errors or self.statuses["failed"])

    def to_dict(self) -> dict:
        scored = self.statuses["scored"] + self.statuses["fetched"]
        return {"pages": self.pages, "page_errors": self.page_errors, "images": self.images,
                "unique_images": self.unique_images, "statuses": dict(self.statuses), "verdicts": dict(self.verdicts),
                "errors": dict(self.errors), "archive_errors": self.archive_errors, "seconds": round(self.seconds, 3),
                "images_per_s": round(scored / self.seconds, 2) if self.seconds else None,
                "unique_images_per_s": round(self.unique_images / self.seconds, 2) if self.seconds else None,
                "failed": self.failed}


# --------------------------------------------------------------------------- the scan
def _location(capture) -> dict:
    return ({"warc_file": capture.file, "offset": capture.offset, "record_id": capture.record_id,
             "warc_date": capture.date} if capture else dict.fromkeys(("warc_file", "offset", "record_id", "warc_date")))


class Pipeline:
    """Pages wait here until every image they show has an outcome; batches are scored one at a time in a
    background thread while the next pages are read."""

    def __init__(self, scorer: Scorer, outcomes: Outcomes, options: ScanOptions, write: Callable[[dict], None],
                 summary: Summary):
        self.scorer, self.outcomes, self.options, self.write, self.summary = scorer, outcomes, options, write, summary
        self.waiting: list[tuple[Page, list[dict]]] = []
        self.batch: dict[str, bytes] = {}
        self.running: tuple[Future, set[str]] | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="score")

    def _entry(self, ref: ImageRef) -> dict:
        entry = {"url": ref.url, "sha256": None, "status": ref.status, **_location(ref.capture)}
        if ref.http_status is not None:
            entry["http_status"] = ref.http_status
        if ref.status == "not_archived" and self.options.fetch_missing:
            try:
                data = self.options.fetch_missing(ref.url)
                entry.update(status=None, fetched=True)
            except ApiError as exc:
                entry["fetch_error"] = exc.to_dict()
                return entry
        elif ref.status is not None:
            if ref.error:
                entry["error"] = ref.error
            return entry
        else:
            known = ref.capture and ref.data is None and self.outcomes.payload_sha(ref.capture.file, ref.capture.offset)
            if known:
                entry["sha256"] = known
                return entry
            try:
                data = ref.read(self.options.max_image_bytes)
            except RecordError as exc:
                entry.update(status="failed", error=exc.error.to_dict())
                return entry
            except OverflowError as exc:
                where = f"{ref.capture.file} at offset {ref.capture.offset}: " if ref.data is None else ""
                entry.update(status="failed", error={"code": "payload_too_large", "message": where + str(exc)})
                return entry
        sha = entry["sha256"] = sha256_bytes(data)
        if ref.capture and ref.data is None and not entry.get("fetched"):
            self.outcomes.remember_payload(ref.capture.file, ref.capture.offset, sha)
        if sha not in self.batch and not (self.running and sha in self.running[1]) and not self.outcomes.has(sha):
            self.batch[sha] = data
            if len(self.batch) >= self.scorer.batch_images:
                self.submit()
        return entry

    def add(self, page: Page) -> None:
        self.waiting.append((page, [self._entry(ref) for ref in page.images]))
        if not self.running:
            self._flush()

    def submit(self) -> None:
        self.collect()
        if self.batch:
            batch, self.batch = self.batch, {}
            self.summary.unique_images += len(batch)
            self.running = (self.executor.submit(self.scorer.score, list(batch.items())), set(batch))

    def collect(self) -> None:
        if self.running:
            future, shas = self.running
            try:
                outcomes = future.result()
            except Exception as exc:  # noqa: BLE001 - a scorer's bug fails its batch's images, not the crawl
                outcomes = {}
                error = {"code": "internal_error", "message": f"scoring failed: {type(exc).__name__}: {exc}"[:300]}
            else:
                error = {"code": "internal_error", "message": "the scorer returned no outcome for this image"}
            self.outcomes.put({sha: outcomes.get(sha) or {"error": error} for sha in shas})
            self.running = None
            self._flush()

    def finish(self) -> None:
        self.submit()
        self.collect()
        self._flush()
        self.executor.shutdown()

    def _flush(self) -> None:
        """Write the waiting pages, in order, while the first one's images all have outcomes."""
        while self.waiting:
            page, entries = self.waiting[0]
            pending = [e for e in entries if e["status"] is None]
            if any(e["sha256"] in self.batch or (self.running and e["sha256"] in self.running[1]) for e in pending):
                return
            for entry in pending:
                outcome = self.outcomes.get(entry["sha256"])
                fetched = entry.pop("fetched", False)
                entry["status"] = ("fetched" if fetched else "scored") if "result" in outcome else "failed"
                entry.update(outcome)
            self.waiting.pop(0)
            self.write(self._page_record(page, entries))

    def _page_record(self, page: Page, entries: list[dict]) -> dict:
        summary = self.summary
        summary.pages += 1
        summary.images += len(entries)
        record = {"page_url": page.url, "crawl_date": page.capture.date, **_location(page.capture)}
        if page.error:
            summary.page_errors += 1
            summary.errors[page.error["code"]] += 1
            record["error"] = page.error
        for entry in entries:
            summary.statuses[entry["status"]] += 1
            if "error" in entry:
                summary.errors[entry["error"]["code"]] += 1
            if "result" in entry:
                summary.verdicts[entry["result"].get("verdict")] += 1
        record["images"] = entries
        record["counts"] = dict(Counter(entry["status"] for entry in entries))
        return record



def scan_crawl(warc_files: list[str], scorer: Scorer, options: ScanOptions,
               input_errors: Iterable[ArchiveError] = ()) -> Summary:
    """Index ``warc_files``, score their pages' images, write options.out (and options.parquet)."""
    from tqdm import tqdm

    started = time.perf_counter()
    summary = Summary()
    for error in input_errors:
        summary.archive_errors.append(error.to_dict())
        summary.errors[error.code] += 1
    with tempfile.TemporaryDirectory(prefix="gamma-scan-") as work, contextlib.ExitStack() as stack:
        index = CrawlIndex(options.index or os.path.join(work, "index.sqlite"))
        stack.callback(index.close)
        outcomes = Outcomes(os.path.join(work, "outcomes.sqlite"))
        with tqdm(unit="record", desc="index", disable=not options.progress, file=sys.stderr) as bar:
            for warc_file in warc_files:
                for error in index.add(warc_file, progress=bar.update):
                    summary.archive_errors.append(error.to_dict())
                    summary.errors[error.code] += 1
        parquet = ParquetOut(str(stack.enter_context(atomic_path(options.parquet)))) if options.parquet else None
        out = stack.enter_context(open(stack.enter_context(atomic_path(options.out)), "w", encoding="utf-8"))
        bar = stack.enter_context(tqdm(total=index.page_count(), unit="page", desc="scan",
                                       disable=not options.progress, file=sys.stderr))

        def write(record: dict) -> None:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if parquet:
                parquet.add(record)
            bar.update(1)
            bar.set_postfix(images=summary.images, unique=summary.unique_images, refresh=False)

        pipeline = Pipeline(scorer, outcomes, options, write, summary)
        for page in pages(index, max_html_bytes=options.max_html_bytes):
            pipeline.add(page)
        pipeline.finish()
        if parquet:
            parquet.close()
    summary.seconds = time.perf_counter() - started
    return summary


# --------------------------------------------------------------------------- the command
def gather_inputs(inputs: list[str], from_list: str | None) -> tuple[list[str], list[str], list[ArchiveError]]:
    """(WARC files, JSONL files, errors for the others) from files, folders (walked) and a list file."""
    from .crawl.warc import CrawlInputError, input_kind

    named = list(inputs)
    if from_list:
        with open(from_list, encoding="utf-8") as handle:
            named += [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    if not named:
        raise ValueError("name WARC files, folders of them, --from-list FILE, or one JSONL file of pages")
    files = []
    for name in named:
        if os.path.isdir(name):
            files += sorted(os.path.join(root, f) for root, _, names in os.walk(name) for f in names)
        elif os.path.isfile(name):
            files.append(name)
        else:
            raise ValueError(f"no such file or folder: {name}")
    warcs, jsonl, errors = [], [], []
    for path in files:
        try:
            (warcs if input_kind(path) == "warc" else jsonl).append(path)
        except (CrawlInputError, OSError) as exc:
            errors.append(ArchiveError(path, 0, "warc_unreadable", str(exc).removeprefix(f"{path}: ")))
    return warcs, jsonl, errors


def crawl_main(args, warc_files: list[str], input_errors: list[ArchiveError]) -> int:
    """`gamma scan` on WARC files (args from server/scan.py's parser)."""
    from .config import Settings

    if args.enqueue:
        from .config import configure_rq
        from .redisconn import connect

        settings = Settings.from_env()
        if settings.embedded:
            print("gamma scan --enqueue: set REDIS_URL to the Redis the crawl workers share", file=sys.stderr)
            return 2
        configure_rq(settings)   # the workers' RQ key prefix, before RQ is imported
        from .crawl_jobs import enqueue

        entries = enqueue(warc_files, args.enqueue, args.index or os.path.join(args.enqueue, "index.sqlite"),
                          connect(settings.redis_url), timeout=args.job_timeout, progress=not args.no_progress)
        print(json.dumps({"jobs": entries}) if args.json else
              "\n".join(f"{e['state']:<14} {e['job_id']}  {e['warc_file']} -> {e['out']}" for e in entries))
        return 1 if input_errors else 0

    fetch_missing = None
    if args.fetch_missing:
        from .fetch import fetch

        settings = Settings.from_env()
        fetch_missing = lambda url: fetch(url, max_bytes=settings.max_upload_bytes,  # noqa: E731
                                          timeout=settings.fetch_timeout, allow=settings.test_allow).data
    options = ScanOptions(args.out, parquet=args.parquet, index=args.index, max_html_bytes=args.max_html_bytes,
                          fetch_missing=fetch_missing, progress=not args.no_progress)
    if args.parquet:
        ParquetOut.check()
    if args.local:
        try:
            scorer = LocalScorer(Settings.from_env(), batch_images=args.batch_images)
        except Exception as exc:  # noqa: BLE001 - any load failure is one clear line
            print(f"gamma scan: cannot load the model: {exc}", file=sys.stderr)
            return 2
    else:
        from .scan import Client

        scorer = ServerScorer(Client(args.server, args.key or os.environ.get("GAMMA_API_KEY")),
                              batch_images=args.batch_images)
    summary = scan_crawl(warc_files, scorer, options, input_errors)
    report = summary.to_dict()
    if args.json:
        print(json.dumps(report), flush=True)
    else:
        print(format_summary(report), file=sys.stderr)
    return 1 if summary.failed else 0


def format_summary(report: dict) -> str:
    def counts(values: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(values.items(), key=lambda kv: -kv[1])) or "none"

    lines = [f"{report['pages']} pages ({report['page_errors']} unreadable), {report['images']} images, "
             f"{report['unique_images']} unique scored, in {report['seconds']} s ({report['images_per_s']} images/s)",
             f"statuses: {counts(report['statuses'])}", f"verdicts: {counts(report['verdicts'])}",
             f"errors: {counts(report['errors'])}"]
    lines += [f"archive error: {error['message']}" for error in report["archive_errors"]]
    return "\n".join(lines)
