"""A crawl scan as RQ jobs (`gamma scan --enqueue`): one job per WARC file, checkpointed page by page."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Callable

from gamma_detect.files import sha256_bytes

from .crawl.index import CrawlIndex
from .crawl.pages import pages
from .crawl_scan import Outcomes, ScanOptions, Summary, Pipeline
from .crawl_scorers import LocalScorer, Scorer


_SCORER: LocalScorer | None = None   # a work horse's; loaded by its first job


def _resume(partial: str) -> int:
    """The pages an interrupted run of this job already wrote (its checkpoint); a line cut short is dropped."""
    if not os.path.exists(partial):
        return 0
    with open(partial, "rb+") as handle:
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
    return data[:keep].count(b"\n")


def scan_warc_file(warc_file: str, index_path: str, out: str, scorer: Scorer, options: ScanOptions,
                   checkpoint: Callable[[int], None] = lambda pages: None) -> Summary:
    """One file's pages (the crawl's index already built at ``index_path``, so revisits may point at other files),
    appended to ``out``.partial page by page and resumed from it; renamed to ``out`` when the file is done."""
    started = time.perf_counter()
    summary = Summary()
    partial = out + ".partial"
    done = _resume(partial)
    with tempfile.TemporaryDirectory(prefix="gamma-scan-") as work, open(partial, "a", encoding="utf-8") as handle:
        index = CrawlIndex(index_path)
        for error in index.add(warc_file):
            summary.archive_errors.append(error.to_dict())
            summary.errors[error.code] += 1
        written = done

        def write(record: dict) -> None:
            nonlocal written
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            written += 1
            checkpoint(written)

        pipeline = Pipeline(scorer, Outcomes(os.path.join(work, "outcomes.sqlite")), options, write, summary)
        for number, page in enumerate(pages(index, max_html_bytes=options.max_html_bytes, warc_file=warc_file)):
            if number >= done:   # pages come in record order: the first `done` were written before
                pipeline.add(page)
        pipeline.finish()
        index.close()
    os.replace(partial, out)
    summary.seconds = time.perf_counter() - started
    return summary


def run_warc_job(payload: dict) -> dict:
    """The body of jobs.scan_warc: {"warc_file", "index", "out"} -> the file's summary (a finished file: skipped)."""
    global _SCORER
    from rq import get_current_job

    from .config import Settings

    if os.path.exists(payload["out"]):
        return {"warc_file": payload["warc_file"], "out": payload["out"], "skipped": "already scanned"}
    job = get_current_job()

    def checkpoint(pages_written: int) -> None:
        job.meta["checkpoint"] = {"pages": pages_written}
        job.save_meta()

    if _SCORER is None:   # the service's result cache shared: an image in several files of the crawl scored once
        _SCORER = LocalScorer(Settings.from_env(), connection=job.connection)
    options = ScanOptions(payload["out"], progress=False)
    summary = scan_warc_file(payload["warc_file"], payload["index"], payload["out"], _SCORER, options, checkpoint)
    return {"warc_file": payload["warc_file"], "out": payload["out"], **summary.to_dict()}


def warc_job_id(warc_file: str) -> str:
    stat = os.stat(warc_file)
    return "warc-" + sha256_bytes(f"{os.path.abspath(warc_file)}:{stat.st_size}:{stat.st_mtime}".encode())[:40]


def enqueue(warc_files: list[str], results: str, index_path: str, connection, *, timeout: int,
            retries: int = 3, progress: bool = True) -> list[dict]:
    """Index the crawl at ``index_path`` (a path every worker reads), then one job per WARC file on the crawl
    queue; a file whose results exist, or whose job is queued or running, is not enqueued again."""
    from rq.job import Job, JobStatus, Retry
    from rq.queue import Queue
    from rq.serializers import JSONSerializer
    from tqdm import tqdm

    from . import jobs

    os.makedirs(results, exist_ok=True)
    index = CrawlIndex(index_path)
    with tqdm(unit="record", desc="index", disable=not progress, file=sys.stderr) as bar:
        for warc_file in warc_files:
            index.add(warc_file, progress=bar.update)
    index.close()
    queue = Queue(jobs.CRAWL_QUEUE, connection=connection, serializer=JSONSerializer)
    entries = []
    for warc_file in warc_files:
        job_id = warc_job_id(warc_file)
        out = os.path.join(os.path.abspath(results), f"{os.path.basename(warc_file)}-{job_id[5:13]}.jsonl")
        entry = {"warc_file": os.path.abspath(warc_file), "job_id": job_id, "out": out}
        existing = Job.fetch_many([job_id], connection=connection, serializer=JSONSerializer)[0]
        status = existing.get_status(refresh=False) if existing else None
        if os.path.exists(out):
            entry["state"] = "finished"
        elif status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            entry["state"] = "already_queued"
        else:
            if existing:
                existing.delete()
            queue.enqueue_call(jobs.SCAN_WARC, args=({"warc_file": entry["warc_file"], "index": os.path.abspath(index_path),
                                                      "out": out},),
                               job_id=job_id, timeout=timeout, result_ttl=7 * 86400, failure_ttl=7 * 86400,
                               retry=Retry(max=retries), description=f"scan_warc {os.path.basename(warc_file)}")
            entry["state"] = "queued"
        entries.append(entry)
    return entries
