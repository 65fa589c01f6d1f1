"""What the API needs at hand: settings, Redis, the queue, the cache, keys and metrics."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.callbacks import Callback
from rq.job import Dependency, Job, JobStatus, Retry
from rq.queue import Queue
from rq.serializers import JSONSerializer

from gamma_detect.contract import JOB_ENDED, JOB_ID_PATTERN

from . import jobs
from .cache import Cache, Lookup, url_hash, with_request
from .config import Settings
from .errors import ApiError
from .keys import KeyStore
from .metrics import Metrics, process_metrics
from .redisconn import connect

# How often a long poll looks again when RQ cannot block for it: under a second left, or a retried job whose
# earlier attempt's Result is already stored (RQ blocks only until a job's first Result, in whole seconds).
POLL_INTERVAL_S = 0.25
ACTIVE_RQ = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
ENDED_RQ = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED}
_JOB_ID = re.compile(JOB_ID_PATTERN)   # fullmatch: "$" alone would let a trailing newline through


@dataclass
class Accepted:
    job_id: str
    reused: bool = False


class Service:
    def __init__(self, settings: Settings, connection=None):
        # Retention: nothing outlives the cache TTL (job results hold URLs and page URLs).
        settings = settings.replace(result_ttl=min(settings.result_ttl, settings.cache_ttl),
                                    failure_ttl=min(settings.failure_ttl, settings.cache_ttl),
                                    url_ttl=min(settings.url_ttl, settings.cache_ttl))
        self.settings = settings
        self.connection = connection or connect(settings.redis_url, socket_timeout=10)
        self.queue = Queue(jobs.INFERENCE_QUEUE, connection=self.connection, serializer=JSONSerializer)
        self.cache = Cache(self.connection, settings)
        self.keys = KeyStore(self.connection, settings)
        self.metrics: Metrics = process_metrics(lambda: self.connection, settings.key("metrics"))

    # ------------------------------------------------------------------ jobs
    def fetch_job(self, job_id: str) -> Job:
        if not _JOB_ID.fullmatch(job_id):   # ASCII only: RQ raises on anything else (str.isalnum takes "é")
            raise ApiError("not_found", "no such job (a job id is 1 to 64 of A-Z, a-z, 0-9, - and _)")
        try:
            return Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError as exc:
            raise ApiError("not_found", "no such job (unknown or expired)") from exc

    def wait_for_attempt(self, job: Job, seconds: float) -> None:
        """Return once an attempt of ``job`` has ended (RQ stored its Result) or after about ``seconds``."""
        if seconds >= 1 and job.latest_result() is None:
            job.latest_result(timeout=int(seconds))
        else:
            time.sleep(min(seconds, POLL_INTERVAL_S))

    def _job_active(self, job_id: str) -> bool:
        try:
            status = Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer).get_status(refresh=False)
        except NoSuchJobError:
            return False
        return status in ACTIVE_RQ

    def _enqueue_analyze(self, payload: dict, job_id: str, *, retry: Retry | None = None, pipeline=None) -> Job:
        s = self.settings
        return self.queue.enqueue_call(
            jobs.ANALYZE, args=(payload,), job_id=job_id, timeout=s.job_timeout, result_ttl=s.result_ttl,
            ttl=s.queued_ttl, failure_ttl=s.failure_ttl, description="analyze", retry=retry, pipeline=pipeline,
            meta={"kind": "analyze"}, on_failure=Callback(jobs.ON_FAILURE))

    def _inflight_ttl(self) -> int:
        return self.settings.queued_ttl + self.settings.job_timeout * (self.settings.fetch_retries + 1) + 60

    def _claim(self, key: str | None, job_id: str) -> str | None:
        """Mark `key` as being analysed by `job_id`; return another live job already holding it."""
        if key is None:
            return None
        for _ in range(3):
            if self.connection.set(key, job_id, nx=True, ex=self._inflight_ttl()):
                return None
            holder = self.connection.get(key)
            holder = holder.decode() if isinstance(holder, bytes) else holder
            if holder and self._job_active(holder):
                return holder
            self.connection.delete(key)   # stale marker: the job ended or expired
        return None

    def _reserve(self, lookup: Lookup, kind: str, ident: str) -> tuple[Accepted, str | None]:
        """The job for a request: a live one already analysing the same bytes or URL (reused), else a new id
        and the in-flight marker it holds (none before a model is published: no digest to key it by)."""
        if lookup.inflight_job and self._job_active(lookup.inflight_job):
            return Accepted(lookup.inflight_job, reused=True), None
        job_id = str(uuid.uuid4())
        marker = self.settings.key(kind, lookup.digest, ident) if lookup.digest else None
        holder = self._claim(marker, job_id)
        return (Accepted(holder, reused=True), None) if holder else (Accepted(job_id), marker)

    def submit_upload(self, data: bytes, sha256: str, filename: str | None, lookup: Lookup) -> Accepted:
        s = self.settings
        accepted, marker = self._reserve(lookup, "inflight", sha256)
        if accepted.reused:
            return accepted
        job_id = accepted.job_id
        blob = s.key("blob", job_id)
        payload = {"source": "upload", "blob": blob, "sha256": sha256, "filename": filename,
                   "inflight": [marker] if marker else []}
        try:
            self.connection.set(blob, data, ex=s.queued_ttl + s.job_timeout + 60)
            self._enqueue_analyze(payload, job_id)
        except Exception:
            self.connection.delete(*[k for k in (blob, marker) if k])
            raise
        return accepted

    def submit_url(self, url: str, page_url: str | None, lookup: Lookup) -> Accepted:
        s = self.settings
        accepted, marker = self._reserve(lookup, "inflight-url", url_hash(url))
        if accepted.reused:
            return accepted
        payload = {"source": "url", "url": url, "page_url": page_url, "inflight": [marker] if marker else []}
        retry = Retry(max=s.fetch_retries, interval=[2, 10, 30][: max(1, s.fetch_retries)]) if s.fetch_retries > 0 else None
        try:
            self._enqueue_analyze(payload, accepted.job_id, retry=retry)
        except Exception:
            if marker:
                self.connection.delete(marker)
            raise
        return accepted

    def submit_scan(self, page_url: str | None, items: list[dict]) -> str:
        s = self.settings
        child_ids = sorted({item["job_id"] for item in items if item.get("job_id")})
        job_id = str(uuid.uuid4())
        depends = Dependency(jobs=child_ids, allow_failure=True) if child_ids else None
        self.queue.enqueue_call(
            jobs.COLLECT_SCAN, args=({"page_url": page_url, "items": items},), job_id=job_id,
            timeout=60, result_ttl=s.result_ttl, failure_ttl=s.failure_ttl,
            ttl=s.queued_ttl + s.job_timeout * (s.fetch_retries + 2) + 300,
            description="scan", depends_on=depends, meta={"kind": "scan"})
        return job_id

    def cancel(self, job: Job) -> None:
        status = job.get_status(refresh=True)
        if status in ENDED_RQ:
            raise ApiError("conflict", f"the job has already ended ({status.value})")
        payload = job.args[0] if job.args else {}
        if (job.meta or {}).get("kind") == "scan" or job.func_name == jobs.COLLECT_SCAN:
            for item in payload.get("items", []):
                if item.get("job_id"):
                    try:
                        child = Job.fetch(item["job_id"], connection=self.connection, serializer=JSONSerializer)
                        if child.get_status(refresh=False) in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
                            child.cancel()
                            jobs.end_of_job(child.args[0], self.connection)
                    except (NoSuchJobError, InvalidJobOperation):
                        pass  # the image job expired or ended meanwhile: nothing left to cancel

        try:
            job.cancel()
        except InvalidJobOperation as exc:
            raise ApiError("conflict", str(exc)) from exc
        except ValueError as exc:
            # The worker ended the job between the check above and the cancel: RQ then finds the attempt's
            # Execution already deleted ("Execution ... not found in Redis"). Found by schemathesis.
            status = job.get_status(refresh=True)
            if status not in ENDED_RQ:
                raise
            raise ApiError("conflict", f"the job has already ended ({status.value})") from exc
        if job.func_name == jobs.ANALYZE:
            jobs.end_of_job(payload, self.connection)

    # ------------------------------------------------------------------ views
    def job_view(self, job: Job) -> dict:
        view = {"id": job.id, "kind": (job.meta or {}).get("kind", "analyze" if job.func_name == jobs.ANALYZE else "scan")}
        view.update(jobs.job_view_status(job))
        view["enqueued_at"] = _iso(job.enqueued_at or job.created_at)
        view["ended_at"] = _iso(job.ended_at) if view["status"] in JOB_ENDED else None
        # order: id, status first
        ordered = {"id": view.pop("id"), "status": view.pop("status")}
        ordered.update(view)
        return ordered

    def cached_response(self, lookup: Lookup, path: str | None) -> dict:
        return with_request(lookup.result, path=path, cached=True)


def _iso(value) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text.replace("+00:00", "Z") if text.endswith("+00:00") else (text + "Z" if value.tzinfo is None else text)
