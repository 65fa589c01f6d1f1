"""RQ job functions (plain functions, one JSON-serialisable dict argument) and the steps they share.

``analyze`` scores one image; the batching worker (worker.py) runs the same steps for many
jobs at once: ``prepare`` (load the bytes, decode, read the provenance evidence of the original
bytes) per job, one ``Detector.predict`` for the
batch, then ``finish`` (build the result, fill the cache) per job. ``collect_scan`` gathers the
results of a crawled page's image jobs.

Payload of an analyze job::

    {"source": "upload", "blob": "<redis key of the bytes>", "sha256": ..., "filename": ...,
     "inflight": [keys to delete when the job ends]}
    {"source": "url", "url": ..., "page_url": ..., "inflight": [...]}
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamma_detect.files import sha256_bytes
from gamma_detect.runtime.evidence import Evidence, EvidenceConfig, annotate, read_evidence, reusable_pixels

from . import cache
from .config import Settings
from .decode import ImageInfo, decode
from .errors import ApiError
from .fetch import fetch

log = logging.getLogger("gamma.server.jobs")

ANALYZE = "gamma_detect.server.jobs.analyze"
COLLECT_SCAN = "gamma_detect.server.jobs.collect_scan"
ON_FAILURE = "gamma_detect.server.jobs.on_failure"
INFERENCE_QUEUE = "inference"
# Crawl scans as jobs (`gamma scan --enqueue`): one per WARC file on a queue of their own, run by `gamma worker
# --crawl`, so long scans never delay the inference queue.
SCAN_WARC = "gamma_detect.server.jobs.scan_warc"
CRAWL_QUEUE = "crawl"


# --------------------------------------------------------------------------- model loading
def load_model(settings: Settings):
    """The Detector: the runtime's, or a factory named by GAMMA_DETECTOR (`module:function`)."""
    if settings.detector:
        module, _, function = settings.detector.partition(":")
        return getattr(importlib.import_module(module), function or "make_detector")(settings)
    from gamma_detect.runtime import load_detector

    # A variant that fails its load-time self-check on this CPU is not served: FP32 is, and the model block of
    # every result, /readyz and the log say so (model_info["fallback"]).
    detector = load_detector(settings.model or None, backend=settings.backend, variant=settings.variant,
                             threads=settings.threads or None, fallback_to_fp32=True)
    detector.mask_side = settings.heatmap_side   # maps no larger than the heatmaps stored from them
    return detector


def model_record(detector) -> dict:
    """The detector's model_info plus the crop policy's smallest accepted short side (the API checks it early)."""
    return {**detector.model_info, "min_side": detector.policy.min_side}


@dataclass
class Context:
    settings: Settings
    connection: Any
    detector: Any = None
    # GAMMA_C2PA_TRUST_ANCHORS is read once, when the worker starts (a missing file stops it there).
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig.from_env)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get_detector(self):
        with self._lock:
            if self.detector is None:
                self.detector = load_model(self.settings)
        return self.detector

    @property
    def model(self) -> dict:
        return model_record(self.get_detector())


_context: Context | None = None


def set_context(context: Context | None) -> None:
    global _context
    _context = context


def get_context() -> Context:
    """The worker's context; a plain `rq worker` gets one built from the environment on first use."""
    global _context
    if _context is None:
        from rq import get_current_job

        job = get_current_job()
        _context = Context(Settings.from_env(), job.connection if job else None)
    return _context


# --------------------------------------------------------------------------- steps
@dataclass
class Prepared:
    payload: dict
    rgb: np.ndarray | None
    info: ImageInfo | None
    sha256: str
    timings: dict
    cached: dict | None = None   # these bytes were already scored by this model: no decode, no inference
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def native(self) -> tuple[int, int]:
        """The image's own (height, width), which ``rgb`` may be a decoder's reduction of."""
        return self.info.height, self.info.width


def load_bytes(payload: dict, ctx: Context) -> tuple[bytes, dict]:
    timings: dict = {}
    settings = ctx.settings
    if payload.get("source") == "url":
        start = time.perf_counter()
        fetched = fetch(payload["url"], max_bytes=settings.max_upload_bytes, timeout=settings.fetch_timeout,
                        allow=settings.test_allow)
        timings["fetch_ms"] = round((time.perf_counter() - start) * 1000, 2)
        return fetched.data, timings
    data = ctx.connection.get(payload["blob"])
    if data is None:
        raise ApiError("internal_error", "the uploaded image expired before the job ran")
    return data, timings


def prepare(payload: dict, ctx: Context, min_side: int) -> Prepared:
    data, timings = load_bytes(payload, ctx)
    sha = sha256_bytes(data)
    digest = ctx.get_detector().model_info["digest"]
    hit = ctx.connection.get(cache.result_key(ctx.settings, digest, sha))
    if hit:   # e.g. the same image at another URL: analysed once
        return Prepared(payload, None, None, sha, timings, cached=json.loads(hit))
    return prepare_bytes(payload, data, sha, ctx, min_side, timings)


def prepare_bytes(payload: dict, data: bytes, sha: str, ctx: Context, min_side: int, timings: dict) -> Prepared:
    """Decode and read the evidence of bytes in hand (prepare's step after the cache; a crawl scan's in process)."""
    start = time.perf_counter()
    # A JPEG decodes at the DCT scale nearest above the crop policy's working size; `native` says its own size.
    rgb, info = decode(data, max_pixels=ctx.settings.max_pixels, min_side=min_side,
                       work=ctx.get_detector().policy.working_size)
    timings["decode_ms"] = round((time.perf_counter() - start) * 1000, 2)
    # From the original bytes; the watermark check reuses the decode's pixels where they are full size.
    start = time.perf_counter()
    evidence = read_evidence(data, ctx.evidence, rgb=reusable_pixels(rgb, (info.height, info.width), ctx.evidence))
    timings["evidence_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return Prepared(payload, rgb, info, sha, timings, evidence=evidence)


def finish(prepared: Prepared, prediction, detector, ctx: Context, extra_timings: dict) -> dict:
    """Build the API result for one image and store it (result, heatmap, URL map) in the cache."""
    result = make_result(prepared, prediction, detector, extra_timings)
    heatmap = cache.encode_mask(prediction.mask, ctx.settings.heatmap_side)
    payload = prepared.payload
    cache.store(ctx.connection, ctx.settings, result, heatmap,
                url=payload.get("url") if payload.get("source") == "url" else None)
    return cache.with_request(result, path=source_path(payload), cached=False)


def make_result(prepared: Prepared, prediction, detector, extra_timings: dict) -> dict:
    """The cached form of one image's result (cache.make_result) from its prediction and evidence."""
    core = annotate(detector.result(prediction), prepared.evidence)
    return cache.make_result(core, model=dict(detector.model_info),
                             image={"sha256": prepared.sha256, **prepared.info.to_dict()},
                             timings={**prepared.timings, **extra_timings})


def finish_cached(prepared: Prepared, ctx: Context) -> dict:
    """A job whose image turned out to be cached: remember its URL, answer with the cached result."""
    payload = prepared.payload
    if payload.get("source") == "url":
        ctx.connection.set(ctx.settings.key("url", cache.url_hash(payload["url"])), prepared.sha256,
                           ex=min(ctx.settings.url_ttl, ctx.settings.cache_ttl))
    return cache.with_request(prepared.cached, path=source_path(payload), cached=True)


def source_path(payload: dict) -> str | None:
    return payload.get("url") if payload.get("source") == "url" else payload.get("filename")


def end_of_job(payload: dict, connection) -> None:
    """Forget what only the job needed: the uploaded bytes and the in-flight markers."""
    keys = [k for k in [payload.get("blob"), *payload.get("inflight", [])] if k]
    if keys:
        connection.delete(*keys)


def api_error(error: BaseException | None) -> ApiError:
    """The API error a job's exception means, decided by its type."""
    from rq.exceptions import AbandonedJobError
    from rq.timeouts import JobTimeoutException

    if isinstance(error, ApiError):
        return error
    if isinstance(error, AbandonedJobError):
        return ApiError("worker_lost")
    if isinstance(error, JobTimeoutException):
        return ApiError("job_timeout")
    return ApiError("internal_error")


def on_failure(job, connection, exc_type=None, exc_value=None, traceback=None) -> None:
    """RQ failure callback (also run for jobs abandoned by a dead worker, with AbandonedJobError): records
    the API error in the job's meta (what /jobs/<id> reports) and, once the job will not run again, forgets
    its bytes and in-flight markers."""
    job.meta["error"] = api_error(exc_value).to_dict()
    job.save_meta()
    if not job.should_retry:
        end_of_job(job.args[0] if job.args else {}, connection)


def predict_one(ctx: Context, prepared: Prepared):
    from gamma_detect.crops import ImageTooSmall

    try:
        return ctx.get_detector().predict([prepared.rgb], native=[prepared.native])[0]
    except ImageTooSmall as exc:
        raise ApiError("image_too_small", str(exc)) from exc


# --------------------------------------------------------------------------- job functions
def analyze(payload: dict) -> dict:
    """Score one image (the single-job path; the batching worker runs the same steps in batches)."""
    ctx = get_context()
    detector = ctx.get_detector()
    prepared = prepare(payload, ctx, model_record(detector)["min_side"])
    if prepared.cached is not None:
        result = finish_cached(prepared, ctx)
        end_of_job(payload, ctx.connection)
        return result
    start = time.perf_counter()
    prediction = predict_one(ctx, prepared)
    inference_ms = round((time.perf_counter() - start) * 1000, 2)
    result = finish(prepared, prediction, detector, ctx, {"inference_ms": inference_ms, "batch_size": 1})
    end_of_job(payload, ctx.connection)
    return result


def scan_warc(payload: dict) -> dict:
    """Scan one WARC file of a crawl ({"warc_file", "index", "out"}); resumes from its checkpoint (crawl_jobs.py)."""
    from .crawl_jobs import run_warc_job

    return run_warc_job(payload)


def collect_scan(payload: dict) -> dict:
    """The result of a crawled page: every image's result or error, in the order given."""
    from rq.job import Job
    from rq.serializers import JSONSerializer

    ctx = get_context()
    items = payload["items"]
    ids = [item["job_id"] for item in items if item.get("job_id")]
    jobs = dict(zip(ids, Job.fetch_many(ids, connection=ctx.connection, serializer=JSONSerializer))) if ids else {}
    images = []
    for item in items:
        entry = {"url": item["url"]}
        if "result" in item:
            entry.update(status="finished", result=item["result"])
        elif "error" in item:
            entry.update(status="failed", error=item["error"])
        else:
            job = jobs.get(item["job_id"])
            view = job_view_status(job)
            entry.update(job_id=item["job_id"], status=view["status"])
            if "result" in view:
                entry["result"] = view["result"]
            if "error" in view:
                entry["error"] = view["error"]
        images.append(entry)
    counts: dict[str, int] = {}
    for entry in images:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return {"page_url": payload.get("page_url"), "images": images, "counts": counts}


# --------------------------------------------------------------------------- job -> API view
STATUS_MAP = {"queued": "queued", "deferred": "queued", "scheduled": "queued", "created": "queued",
              "started": "started", "finished": "finished", "failed": "failed", "stopped": "canceled",
              "canceled": "canceled"}


def job_error(job) -> dict:
    """A failed job's API error: the one its failure callback recorded (internal_error for a job without one)."""
    error = (job.meta or {}).get("error")
    return error if isinstance(error, dict) and "code" in error else ApiError("internal_error").to_dict()


def job_view_status(job) -> dict:
    if job is None:
        return {"status": "failed", "error": ApiError("not_found", "the job expired").to_dict()}
    raw = job.get_status(refresh=False)
    status = STATUS_MAP.get(getattr(raw, "value", raw) or "queued", "queued")
    view: dict = {"status": status}
    if status == "finished":
        view["result"] = job.return_value()
    elif status == "failed":
        view["error"] = job_error(job)
    return view
