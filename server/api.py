"""The HTTP API: blueprints for /v1 (analyze, scan, feedback, heatmaps, openapi), /jobs and health."""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, current_app, g, jsonify, request
from redis.exceptions import RedisError
from rfc3986_validator import validate_rfc3986

from . import feedback as feedback_store
from .cache import Lookup, render_overlay
from .decode import probe
from .errors import ApiError
from .fetch import resolve
from .multipart import file_field, file_fields
from gamma_detect.contract import JOB_ENDED, LIMITS, SCAN_BYTES_ENDPOINT
from gamma_detect.files import sha256_bytes

from .processes import recent_failures
from .service import Service
from .worker import alive_workers, reap_abandoned

v1 = Blueprint("v1", __name__, url_prefix="/v1")
jobs_bp = Blueprint("jobs", __name__, url_prefix="/jobs")
health = Blueprint("health", __name__)

_HEX64 = re.compile(r"[0-9a-f]{64}")   # fullmatch, both: "$" would let a final newline through
_DIGEST = re.compile(r"[0-9a-zA-Z:_.-]{8,128}")


def service() -> Service:
    return current_app.extensions["gamma"]


def accepted(job_id: str, reused: bool = False, **extra):
    body = {"job_id": job_id, "status": "queued", "status_url": f"/jobs/{job_id}", **extra}
    if reused:
        body["shared"] = True   # an identical request is already being analysed: same job
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = body["status_url"]
    return response


def _lookup(*, sha256: str = "", url: str = "") -> Lookup:
    """The cache lookup for these bytes or this URL, counted in the metrics as a hit or a miss."""
    svc = service()
    lookup = svc.cache.lookup(sha256=sha256, url=url)
    svc.metrics.inc("gamma_cache_lookups_total", {"result": "miss" if lookup.result is None else "hit"})
    return lookup


# --------------------------------------------------------------------------- /v1/analyze
@v1.post("/analyze")
def analyze():
    svc = service()
    svc.keys.charge(g.principal)
    mimetype = request.mimetype or ""
    if mimetype == "multipart/form-data":
        # Not request.files: Werkzeug's parser compiles regexes for every new boundary (server/multipart.py).
        part = file_field(request.get_data(cache=False), request.mimetype_params.get("boundary", ""), "image")
        if part is None:
            raise ApiError("bad_request", "send the image as the multipart field `image`")
        data, filename = part
        name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1][:255] or None
        return _analyze_bytes(data, name)
    if mimetype.startswith("image/") or mimetype == "application/octet-stream":
        return _analyze_bytes(request.get_data(cache=False), None)
    if mimetype == "application/json" or mimetype.endswith("+json"):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError("bad_request", "send a JSON object {\"url\": ..., \"page_url\": ...}")
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise ApiError("bad_request", "`url` must be the image URL")
        return _analyze_url(url, _page_url(body))
    raise ApiError("unsupported_media_type",
                   "send multipart/form-data with an `image` field, an image body, or JSON with `url`")


def _page_url(body: dict) -> str | None:
    page_url = body.get("page_url")
    if page_url is not None and (not isinstance(page_url, str) or len(page_url) > LIMITS["url_chars"]):
        raise ApiError("bad_request", f"`page_url` must be a URL of at most {LIMITS['url_chars']} characters")
    return page_url


def _analyze_bytes(data: bytes, filename: str | None):
    result, job = _submit_bytes(data, filename)
    return jsonify(result) if result is not None else accepted(job.job_id, job.reused)


def _submit_bytes(data: bytes, filename: str | None):
    """The cached result for these bytes, or the job now analysing them (ApiError for bytes refused at once)."""
    svc = service()
    if len(data) > svc.settings.max_upload_bytes:
        raise ApiError("payload_too_large", f"the image is larger than {svc.settings.max_upload_bytes} bytes")
    sha = sha256_bytes(data)
    lookup = _lookup(sha256=sha)
    if lookup.result is not None:
        return svc.cached_response(lookup, filename), None
    min_side = int((lookup.model or {}).get("min_side", 1))
    probe(data, max_pixels=svc.settings.max_pixels, min_side=min_side)
    return None, svc.submit_upload(data, sha, filename, lookup)


def _check_url(url: str) -> None:
    """Refuse a URL at once when it is not allowed (the worker checks again when it fetches): not an absolute URI
    as RFC 3986 writes one (the document's `format: uri`; no name is looked up for it), or refused by the guard."""
    longest = LIMITS["url_chars"]
    # The validator's "$" would let a final newline by.
    if len(url) > longest or url.endswith("\n") or not validate_rfc3986(url, rule="URI"):
        raise ApiError("url_not_allowed", f"the URL is not an absolute URL of at most {longest} characters as "
                                          "RFC 3986 writes it (percent-encode spaces and other characters outside it)")
    try:
        resolve(url, allow=service().settings.test_allow)
    except ApiError as exc:
        if exc.code == "url_not_allowed" or not exc.retryable:
            raise


def _analyze_url(url: str, page_url: str | None):
    svc = service()
    lookup = _lookup(url=url)
    if lookup.result is not None:
        return jsonify(svc.cached_response(lookup, url))
    _check_url(url)
    job = svc.submit_url(url, page_url, lookup)
    return accepted(job.job_id, job.reused)


# --------------------------------------------------------------------------- /v1/scan
@v1.post("/scan")
def scan():
    svc = service()
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict):
        raise ApiError("unsupported_media_type" if not request.is_json else "bad_request",
                       "send JSON {\"page_url\": ..., \"image_urls\": [...]}")
    page_url, urls = _page_url(body), body.get("image_urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
        raise ApiError("bad_request", "`image_urls` must be a non-empty list of URLs")
    if len(urls) > svc.settings.max_scan_images:
        raise ApiError("bad_request", f"at most {svc.settings.max_scan_images} images per page")
    svc.keys.charge(g.principal, cost=len(urls))
    items, pending = [], {}
    for url in urls:
        if url in pending:
            items.append(dict(pending[url]))
            continue
        item = {"url": url}
        lookup = _lookup(url=url)
        if lookup.result is not None:
            item["result"] = svc.cached_response(lookup, url)
        else:
            try:
                _check_url(url)
                item["job_id"] = svc.submit_url(url, page_url, lookup).job_id
            except ApiError as exc:
                item["error"] = exc.to_dict()
        pending[url] = item
        items.append(item)
    job_id = svc.submit_scan(page_url, items)
    return accepted(job_id, images=len(items))


@v1.post(SCAN_BYTES_ENDPOINT.removeprefix("/v1"))
def scan_bytes():
    """A crawl's archived images as one scan job: one multipart `image` part each, its file name the entry's url."""
    svc = service()
    if request.mimetype != "multipart/form-data":
        raise ApiError("unsupported_media_type", "send multipart/form-data with one `image` part per image")
    parts = list(file_fields(request.get_data(cache=False), request.mimetype_params.get("boundary", ""), "image"))
    if not parts:
        raise ApiError("bad_request", "send at least one `image` part")
    if len(parts) > svc.settings.max_scan_images:
        raise ApiError("bad_request", f"at most {svc.settings.max_scan_images} images per request")
    svc.keys.charge(g.principal, cost=len(parts))
    items = []
    for data, label in parts:
        item = {"url": (label or "")[:LIMITS["url_chars"]]}
        try:
            result, job = _submit_bytes(data, item["url"])
            item.update({"result": result} if result is not None else {"job_id": job.job_id})
        except ApiError as exc:
            item["error"] = exc.to_dict()
        items.append(item)
    return accepted(svc.submit_scan(None, items), images=len(items))


# --------------------------------------------------------------------------- /v1/feedback
@v1.post("/feedback")
def feedback():
    svc = service()
    svc.keys.charge(g.principal)
    if not request.is_json:
        raise ApiError("unsupported_media_type", "send JSON {\"sha256\", \"result\", \"label\", \"note\"?}")
    entry = feedback_store.validate(request.get_json(silent=True))
    entry_id = feedback_store.add(svc.connection, svc.settings, entry,
                                  g.principal.id if g.principal.authenticated else None)
    svc.metrics.inc("gamma_feedback_total", {"label": entry["label"]})
    response = jsonify({"id": entry_id, "status": "stored"})
    response.status_code = 201
    return response


# --------------------------------------------------------------------------- /v1/heatmaps
@v1.get("/heatmaps/<digest>/<name>")
def heatmap(digest: str, name: str):
    svc = service()
    sha = name[:-4] if name.endswith(".png") else name
    if not _DIGEST.fullmatch(digest) or not _HEX64.fullmatch(sha):
        raise ApiError("not_found", "no such heatmap")
    etag = f'"{digest[:16]}-{sha[:16]}"'
    mask, result = svc.cache.heatmap(digest, sha)
    if mask is None or result is None:
        raise ApiError("not_found", "no such heatmap (unknown or expired)")
    if request.if_none_match and etag.strip('"') in request.if_none_match:
        return Response(status=304, headers={"ETag": etag})
    png = render_overlay(mask, int(result["image"]["width"]), int(result["image"]["height"]))
    return Response(png, mimetype="image/png",
                    headers={"Cache-Control": "private, max-age=3600", "ETag": etag})


@v1.get("/openapi.json")
def openapi():
    from .openapi import document

    return jsonify(document())


# --------------------------------------------------------------------------- /jobs
@jobs_bp.get("/<job_id>")
def get_job(job_id: str):
    svc = service()
    limit = svc.settings.longpoll_max
    try:
        wait = float(request.args.get("wait", "0"))
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= limit:   # also NaN: a wait out of range is the client's mistake, not silently clamped
        raise ApiError("bad_request", f"`wait` must be a number of seconds from 0 to {limit}")
    job = svc.fetch_job(job_id)
    deadline = time.monotonic() + wait
    while True:
        view = svc.job_view(job)
        if view["status"] == "started":
            reap_abandoned(svc.connection, svc.settings)
            job = svc.fetch_job(job_id)
            view = svc.job_view(job)
        remaining = deadline - time.monotonic()
        if view["status"] in JOB_ENDED or remaining <= 0.01:
            return jsonify(view)
        svc.wait_for_attempt(job, min(remaining, 2.0))  # wakes at least every 2 s: a cancel writes no Result
        job = svc.fetch_job(job_id)


@jobs_bp.delete("/<job_id>")
def cancel_job(job_id: str):
    svc = service()
    job = svc.fetch_job(job_id)
    svc.cancel(job)
    return jsonify(svc.job_view(svc.fetch_job(job_id)))


# --------------------------------------------------------------------------- health
@health.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz():
    svc = service()
    checks = {"redis": False, "worker": False, "model": False}
    model, failures = None, []
    try:
        checks["redis"] = bool(svc.connection.ping())
        checks["worker"] = alive_workers(svc.connection, svc.settings) > 0
        model = svc.cache.model()
        checks["model"] = model is not None
        failures = recent_failures(svc.connection, svc.settings)
    except RedisError:
        pass  # Redis is away: the checks not yet passed stay False, and /readyz answers 503 saying which
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    if model:
        body["model"] = {k: model[k] for k in ("name", "version", "digest", "backend", "variant", "fallback")
                         if k in model}
    if failures:   # worker processes that cannot run (the others, if any, still serve): why
        body["worker_failures"] = [{k: f[k] for k in ("worker", "error")} for f in failures]
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response


@health.get("/metrics")
def metrics():
    svc = service()
    gauges = {"gamma_queue_depth": [({"queue": svc.queue.name}, svc.queue.count)],
              "gamma_workers_alive": [({}, alive_workers(svc.connection, svc.settings))]}
    body, content_type = svc.metrics.render(svc.connection, gauges, request.headers.get("Accept"))
    return Response(body, content_type=content_type)
