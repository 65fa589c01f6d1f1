"""Scorers of a crawl scan: sha256 -> outcome for a batch of archived images, in process or through the API."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Protocol

from gamma_detect.contract import LIMITS

from . import cache
from .errors import ApiError

Outcome = dict   # {"result": {...}} or {"error": {"code", "message"}}


class Scorer(Protocol):
    batch_images: int

    def score(self, images: list[tuple[str, bytes]]) -> dict[str, Outcome]:
        """sha256 -> outcome for each (sha256, bytes)."""


class LocalScorer:
    """In process: the server's decode and evidence steps, one predict call per batch (each image alone when
    the batch's call fails, so one bad image fails alone).

    With ``connection`` (a crawl worker's Redis) the service's result cache, keyed by sha256 and model digest, is
    read before scoring and filled after, as the API's workers do: the jobs of one crawl, one per WARC file, then
    score an image shown in several files once, and its heatmap URL answers on the API."""

    def __init__(self, settings, batch_images: int = 16, decode_threads: int | None = None, connection=None):
        from . import jobs

        self.jobs = jobs
        self.context = jobs.Context(settings, connection=connection)
        self.detector = self.context.get_detector()
        self.min_side = jobs.model_record(self.detector)["min_side"]
        self.batch_images = batch_images
        self.pool = ThreadPoolExecutor(decode_threads or os.cpu_count() or 1, thread_name_prefix="decode")

    def _prepare(self, item: tuple[str, bytes]):
        sha, data = item
        try:
            return self.jobs.prepare_bytes({"source": "crawl"}, data, sha, self.context, self.min_side, {})
        except ApiError as exc:
            return exc

    def _cached(self, shas: list[str]) -> dict[str, Outcome]:
        connection = self.context.connection
        if connection is None or not shas:
            return {}
        digest = self.detector.model_info["digest"]
        hits = connection.mget([cache.result_key(self.context.settings, digest, sha) for sha in shas])
        return {sha: {"result": cache.with_request(json.loads(hit), path=None, cached=True)}
                for sha, hit in zip(shas, hits) if hit}

    def _result(self, ready, prediction, timings: dict) -> dict:
        if self.context.connection is not None:   # stored in the cache, with its heatmap
            return self.jobs.finish(ready, prediction, self.detector, self.context, timings)
        result = self.jobs.make_result(ready, prediction, self.detector, timings)
        result.pop("heatmap_url", None)   # no heatmap is stored by a local scan
        return result

    def score(self, images: list[tuple[str, bytes]]) -> dict[str, Outcome]:
        outcomes = self._cached([sha for sha, _ in images])
        images = [(sha, data) for sha, data in images if sha not in outcomes]
        prepared = []
        for (sha, _), ready in zip(images, self.pool.map(self._prepare, images)):
            if isinstance(ready, ApiError):
                outcomes[sha] = {"error": ready.to_dict()}
            else:
                prepared.append(ready)
        if not prepared:
            return outcomes
        start = time.perf_counter()
        try:
            predictions = list(self.detector.predict([p.rgb for p in prepared], native=[p.native for p in prepared]))
        except Exception:  # noqa: BLE001 - one bad image must not fail the batch: each alone below
            predictions = None
        timings = {"inference_ms": round((time.perf_counter() - start) * 1000, 2), "batch_size": len(prepared)}
        for index, ready in enumerate(prepared):
            try:
                prediction = predictions[index] if predictions else self.jobs.predict_one(self.context, ready)
                outcomes[ready.sha256] = {"result": self._result(ready, prediction, timings)}
            except ApiError as exc:
                outcomes[ready.sha256] = {"error": exc.to_dict()}
        return outcomes


class ServerScorer:
    """Through the API: archived bytes in batches of at most LIMITS["scan_images"] parts and the upload byte
    limit in all (keys and rate limits obeyed by the client)."""

    def __init__(self, client, batch_images: int = 32, max_request_bytes: int = LIMITS["upload_bytes"]):
        self.client = client
        self.batch_images = min(batch_images, LIMITS["scan_images"])
        self.max_request_bytes = max_request_bytes

    def _requests(self, images: list[tuple[str, bytes]]) -> Iterable[list[tuple[str, bytes]]]:
        chunk, size = [], 0
        for sha, data in images:
            if chunk and (len(chunk) >= self.batch_images or size + len(data) > self.max_request_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append((sha, data))
            size += len(data)
        if chunk:
            yield chunk

    def score(self, images: list[tuple[str, bytes]]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for chunk in self._requests(images):
            try:
                answer = self.client.scan_bytes(chunk)
            except Exception as exc:  # noqa: BLE001 - the server gone for good: these images fail, the scan goes on
                answer = {"error": {"code": "client_error", "message": str(exc)[:200]}}
            entries = {entry["url"]: entry for entry in answer.get("images", [])}
            for sha, _ in chunk:
                entry = entries.get(sha, answer)
                outcomes[sha] = ({"result": entry["result"]} if "result" in entry else
                                 {"error": entry.get("error") or {"code": "internal_error", "message": "no result"}})
        return outcomes
