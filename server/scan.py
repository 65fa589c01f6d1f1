"""`gamma scan`: crawled pages scored, WARC files from their archived bytes or JSONL pages through the API.

WARC input (`gamma scan crawl.warc.gz --out results.jsonl --local | --server URL | --enqueue DIR`) is
crawl_scan.py's: the archived bytes are scored, never refetched. What follows is the JSONL input's
(`gamma scan crawl.jsonl --out results.jsonl --server URL`).

Each input line is a page ``{"page_url": ..., "image_urls": [...]}``; each output line is
``{"page_url", "job_id", "images": [...], "counts": {...}}`` or ``{"page_url", "error": {...}}``.
Talking to the API (not to Redis) means it works against a remote deployment and obeys its keys
(``--key`` or ``GAMMA_API_KEY``) and rate limits (it waits out 429 Retry-After). It shows
progress, resumes where it stopped (pages already in --out with a result are skipped; failed
ones are tried again), and limits requests per host of the pages' image URLs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from gamma_detect.contract import JOB_ENDED, SCAN_BYTES_ENDPOINT


class HostLimiter:
    """At most `concurrency` pages in flight and `rate` page submissions per second per host."""

    def __init__(self, rate: float, concurrency: int):
        self.rate = rate
        self.concurrency = concurrency
        self._lock = threading.Condition()
        self._next: dict[str, float] = defaultdict(float)
        self._active: dict[str, int] = defaultdict(int)

    def acquire(self, host: str) -> None:
        with self._lock:
            while self._active[host] >= self.concurrency:
                self._lock.wait(0.5)
            self._active[host] += 1
            now = time.monotonic()
            start = max(now, self._next[host])
            self._next[host] = start + (1.0 / self.rate if self.rate > 0 else 0.0)
        if start > now:
            time.sleep(start - now)

    def release(self, host: str) -> None:
        with self._lock:
            self._active[host] -= 1
            self._lock.notify_all()


def page_host(page: dict) -> str:
    urls = page.get("image_urls") or []
    for url in [*urls, page.get("page_url") or ""]:
        host = urlsplit(url).hostname if isinstance(url, str) else None
        if host:
            return host
    return "-"


class Client:
    def __init__(self, server: str, key: str | None, timeout: float = 60.0, max_attempts: int = 8):
        self.server = server.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"
        # urllib3 retries connection failures and 429/503 (waiting out Retry-After, at most a minute; otherwise
        # exponential backoff up to 30 s). Every method: POST /v1/scan is safe to repeat, it only queues a job.
        retry = Retry(total=max_attempts - 1, status_forcelist=(429, 503), allowed_methods=None, backoff_factor=1.0,
                      backoff_max=30, respect_retry_after_header=True, retry_after_max=60, raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.server + path, timeout=self.timeout, **kwargs)

    def scan_page(self, page: dict, wait: float = 30.0, deadline_s: float = 3600.0) -> dict:
        body = {"page_url": page.get("page_url"), "image_urls": page.get("image_urls") or []}
        return self._scan(self.request("POST", "/v1/scan", json=body), page.get("page_url"), wait, deadline_s)

    def scan_bytes(self, images: list[tuple[str, bytes]], wait: float = 30.0, deadline_s: float = 3600.0) -> dict:
        """Archived bytes through SCAN_BYTES_ENDPOINT, one `image` part each named by its label (the entry's url)."""
        files = [("image", (label, data, "application/octet-stream")) for label, data in images]
        return self._scan(self.request("POST", SCAN_BYTES_ENDPOINT, files=files), None, wait, deadline_s)

    def _scan(self, response: requests.Response, page_url: str | None, wait: float, deadline_s: float) -> dict:
        """The scan job's result once it ended, or the error: of the request, of the job, or of waiting for it."""
        if response.status_code != 202:
            return {"page_url": page_url, "error": _error(response)}
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            response = self.request("GET", f"/jobs/{job_id}", params={"wait": wait})
            if response.status_code != 200:
                return {"page_url": page_url, "job_id": job_id, "error": _error(response)}
            view = response.json()
            if view["status"] in JOB_ENDED:
                if view["status"] == "finished":
                    return {"job_id": job_id, **view["result"]}
                return {"page_url": page_url, "job_id": job_id,
                        "error": view.get("error") or {"code": view["status"], "message": view["status"]}}
        return {"page_url": page_url, "job_id": job_id,
                "error": {"code": "timeout", "message": "the scan job did not end in time"}}


def _error(response: requests.Response) -> dict:
    try:
        body = response.json()
        if isinstance(body, dict) and "code" in body:
            return body
    except ValueError:
        pass
    return {"code": f"http_{response.status_code}", "message": response.text[:200]}


def done_pages(out_path: str) -> tuple[set[str], list[str]]:
    """Page URLs already scanned without error, and the lines to keep, from an earlier run."""
    done, keep = set(), []
    if not os.path.exists(out_path):
        return done, keep
    with open(out_path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue   # a line cut short by an interruption
            if "error" not in record and record.get("page_url") is not None:
                done.add(record["page_url"])
                keep.append(json.dumps(record, ensure_ascii=False))
    return done, keep


def run(crawl: str, out: str, server: str, *, key: str | None = None, concurrency: int = 4,
        per_host_rate: float = 2.0, per_host_concurrency: int = 2, poll_wait: float = 30.0, progress: bool = True) -> dict:
    pages = []
    with open(crawl, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            page = json.loads(line)
            if not isinstance(page, dict) or not isinstance(page.get("image_urls"), list):
                raise ValueError(f"{crawl}:{number}: expected {{\"page_url\", \"image_urls\": [...]}}")
            pages.append(page)
    done, keep = done_pages(out)
    # Rewrite what is kept (dropping failed and cut lines), then append.
    with open(out, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in keep)
    todo = [p for p in pages if p.get("page_url") not in done]
    client = Client(server, key or os.environ.get("GAMMA_API_KEY"))
    limiter = HostLimiter(per_host_rate, per_host_concurrency)
    stats = {"pages": len(pages), "skipped": len(pages) - len(todo), "scanned": 0, "failed": 0, "images": 0}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(pages), initial=stats["skipped"], unit="page", file=sys.stderr)
    lock = threading.Lock()

    def one(page: dict) -> dict:
        host = page_host(page)
        limiter.acquire(host)
        try:
            return client.scan_page(page, wait=poll_wait)
        except Exception as exc:  # network gone for good: record and move on
            return {"page_url": page.get("page_url"), "error": {"code": "client_error", "message": str(exc)[:200]}}
        finally:
            limiter.release(host)

    with open(out, "a", encoding="utf-8") as handle, ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending = set()
        iterator = iter(todo)
        for page in iterator:
            pending.add(pool.submit(one, page))
            if len(pending) >= concurrency * 2:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                _write(finished, handle, lock, stats, bar)
        finished, _ = wait(pending)
        _write(finished, handle, lock, stats, bar)
    if bar is not None:
        bar.close()
    return stats


def _write(finished, handle, lock, stats, bar) -> None:
    for future in finished:
        record = future.result()
        with lock:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            if "error" in record:
                stats["failed"] += 1
            else:
                stats["scanned"] += 1
                stats["images"] += len(record.get("images", []))
            if bar is not None:
                bar.update(1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gamma scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", help="WARC files (plain or .gz), folders of them, or one JSONL of "
                                                  "{\"page_url\", \"image_urls\": [...]} pages (told apart by content)")
    parser.add_argument("--from-list", default=None, help="a file naming one input per line")
    parser.add_argument("--out", default=None, help="JSONL results (JSONL input: appended to, a rerun resumes); "
                                                    "needed but with --enqueue")
    parser.add_argument("--server", default=os.environ.get("GAMMA_SERVER", "http://127.0.0.1:8000"))
    parser.add_argument("--local", action="store_true", help="WARC input: score in this process with the local model "
                                                           "(GAMMA_MODEL, GAMMA_VARIANT, GAMMA_THREADS) instead of a server")
    parser.add_argument("--key", default=None, help="API key (default: GAMMA_API_KEY)")
    parser.add_argument("--concurrency", type=int, default=4, help="pages in flight")
    parser.add_argument("--per-host-rate", type=float, default=2.0, help="page submissions per second per image host")
    parser.add_argument("--per-host-concurrency", type=int, default=2, help="pages in flight per image host")
    parser.add_argument("--parquet", default=None, help="WARC input: also one row per (page, image) here (pyarrow)")
    parser.add_argument("--index", default=None, help="WARC input: keep the capture index in this SQLite file "
                                                      "(reused for unchanged files)")
    parser.add_argument("--batch-images", type=int, default=16, help="WARC input: unique images per scoring batch")
    parser.add_argument("--max-html-bytes", type=int, default=16 * 1024 * 1024, help="WARC input: largest HTML page")
    parser.add_argument("--fetch-missing", action="store_true",
                        help="WARC input: fetch images the archive lacks (SSRF-safe fetcher), marked `fetched`")
    parser.add_argument("--enqueue", metavar="RESULTS", default=None,
                        help="WARC input: one RQ job per file on the crawl queue (REDIS_URL; `gamma worker --crawl` "
                             "runs them), results in this folder; the index goes to --index (default RESULTS/index.sqlite)"
                             ", a path every worker must read")
    parser.add_argument("--job-timeout", type=int, default=6 * 3600, help="--enqueue: seconds one WARC file may take")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not args.out and not args.enqueue:
        parser.error("--out FILE is needed (the results; only --enqueue writes into its own folder)")
    from .crawl_scan import crawl_main, gather_inputs

    try:
        warc_files, jsonl_files, input_errors = gather_inputs(args.inputs, args.from_list)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if jsonl_files and (warc_files or len(jsonl_files) > 1 or input_errors):
        parser.error("give one JSONL file of pages alone, or WARC files (and folders of them)")
    if not jsonl_files:
        return crawl_main(args, warc_files, input_errors)
    stats = run(jsonl_files[0], args.out, args.server, key=args.key, concurrency=args.concurrency,
                per_host_rate=args.per_host_rate, per_host_concurrency=args.per_host_concurrency,
                progress=not args.no_progress)
    print(json.dumps(stats), file=sys.stderr)
    return 0 if stats["failed"] == 0 else 1
