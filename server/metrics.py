"""Prometheus metrics shared through Redis, exposed by ``prometheus_client`` (a custom collector).

Each process (gunicorn workers, RQ workers) counts in memory and adds its deltas to one Redis
hash every second, so `/metrics` on any API process shows the whole deployment. Gauges (queue
depth, live workers) are read at scrape time. The exposition (format, escaping, histogram rules,
the format a scraper's Accept header asks for) is the library's: :func:`Metrics.render` hands it
one collector over the hash.

A hash field is the JSON ``[name, labels]`` of a counter, ``[name, labels, bound]`` of a histogram
bucket (the observations at most ``bound`` and above the bucket below: cumulated at scrape time),
``[name, labels, "sum"]`` of a histogram's sum.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

log = logging.getLogger("gamma.server.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
INF = float("inf")


@dataclass(frozen=True)
class Family:
    kind: str                         # counter, histogram or gauge
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()   # a histogram's upper bounds (+Inf added)


METRICS: dict[str, Family] = {
    "gamma_http_requests_total": Family("counter", "HTTP requests by endpoint, method and status",
                                        ("endpoint", "method", "status")),
    "gamma_http_request_duration_seconds": Family("histogram", "HTTP request latency by endpoint", ("endpoint",),
                                                  LATENCY_BUCKETS),
    "gamma_cache_lookups_total": Family("counter", "result cache lookups by outcome (hit, miss)", ("result",)),
    "gamma_jobs_total": Family("counter", "jobs ended by kind and outcome (finished, failed, retried, canceled)",
                               ("kind", "outcome")),
    "gamma_batch_size": Family("histogram", "images per inference batch", (), BATCH_BUCKETS),
    "gamma_inference_seconds": Family("histogram", "Detector.predict time per batch", (), LATENCY_BUCKETS),
    "gamma_job_queue_seconds": Family("histogram", "time jobs waited in the queue", (), LATENCY_BUCKETS),
    "gamma_queue_depth": Family("gauge", "jobs waiting per queue", ("queue",)),
    "gamma_workers_alive": Family("gauge", "workers that sent a heartbeat recently"),
    "gamma_feedback_total": Family("counter", "feedback entries received, by label", ("label",)),
}


def _field(name: str, labels: dict, *part) -> str:
    family = METRICS[name]   # KeyError: declare the metric in METRICS first
    if set(labels) != set(family.labels):
        raise ValueError(f"{name} takes the labels {family.labels}, not {tuple(labels)}")
    return json.dumps([name, {k: str(labels[k]) for k in family.labels}, *part], separators=(",", ":"))


class Metrics:
    def __init__(self, connection_factory, hash_key: str, flush_interval: float = 1.0):
        self._connection_factory = connection_factory
        self.hash_key = hash_key
        self.flush_interval = flush_interval
        self._lock = threading.Lock()
        self._deltas: dict[str, float] = defaultdict(float)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ recording
    def inc(self, name: str, labels: dict | None = None, value: float = 1.0) -> None:
        field = _field(name, labels or {})
        with self._lock:
            self._deltas[field] += value
        self._ensure_thread()

    def observe(self, name: str, value: float, labels: dict | None = None, buckets=None) -> None:
        """One observation of histogram ``name``; ``buckets``, where a caller names them, are its declared ones."""
        declared = METRICS[name].buckets
        if buckets is not None and tuple(buckets) != declared:
            raise ValueError(f"{name}'s buckets are {declared} (METRICS)")
        labels = labels or {}
        bound = next((b for b in declared if value <= b), INF)
        bucket, total = _field(name, labels, bound), _field(name, labels, "sum")
        with self._lock:
            self._deltas[bucket] += 1
            self._deltas[total] += value
        self._ensure_thread()

    # ------------------------------------------------------------------ shipping
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="gamma-metrics", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            deltas, self._deltas = self._deltas, defaultdict(float)
        if not deltas:
            return
        try:
            with self._connection_factory().pipeline(transaction=False) as pipe:
                for field, value in deltas.items():   # float always: HINCRBY fails on a field once fractional
                    pipe.hincrbyfloat(self.hash_key, field, value)
                pipe.execute()
        except Exception as exc:  # Redis away: keep the counts for the next flush
            log.debug("metrics flush failed: %s", exc)
            with self._lock:
                for field, value in deltas.items():
                    self._deltas[field] += value

    def close(self) -> None:
        self._stop.set()
        self.flush()

    # ------------------------------------------------------------------ exposition
    def render(self, connection, gauges: dict[str, list[tuple[dict, float]]],
               accept: str | None = None) -> tuple[bytes, str]:
        """The exposition of everything counted (the whole deployment's) plus ``gauges``, in the format ``accept``
        asks for: (body, content type)."""
        self.flush()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(connection.hgetall(self.hash_key), gauges))
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type


class _Snapshot:
    """A prometheus_client collector over the hash as read at one scrape."""

    def __init__(self, stored: dict, gauges: dict[str, list[tuple[dict, float]]]):
        self.values: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self.histograms: dict[str, dict[tuple, dict]] = defaultdict(dict)
        for raw_field, raw_value in stored.items():
            try:
                name, labels, *part = json.loads(raw_field)
                key = tuple(labels.get(k, "") for k in METRICS[name].labels)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue   # a field of another version's layout: left out of the exposition
            if not part:
                self.values[name][key] += float(raw_value)
                continue
            series = self.histograms[name].setdefault(key, {"sum": 0.0, "buckets": defaultdict(float)})
            if part[0] == "sum":
                series["sum"] += float(raw_value)
            else:
                series["buckets"][float(part[0])] += float(raw_value)   # JSON's Infinity for +Inf
        for name, samples in gauges.items():
            for labels, value in samples:
                self.values[name][tuple(str(labels[k]) for k in METRICS[name].labels)] = float(value)

    def collect(self):
        for name, family in METRICS.items():
            if family.kind == "histogram":
                metric = HistogramMetricFamily(name, family.help, labels=family.labels)
                for key, series in sorted(self.histograms[name].items()):
                    cumulative, buckets = 0.0, []
                    for bound in (*family.buckets, INF):
                        cumulative += series["buckets"].get(bound, 0.0)
                        buckets.append((floatToGoString(bound), cumulative))
                    metric.add_metric(list(key), buckets, series["sum"])
            else:
                kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
                metric = kind(name, family.help, labels=family.labels)
                for key, value in sorted(self.values[name].items()):
                    metric.add_metric(list(key), value)
            yield metric


_PROCESS: Metrics | None = None
_PROCESS_LOCK = threading.Lock()


def process_metrics(connection_factory, hash_key: str) -> Metrics:
    """One Metrics per process and hash key."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None or _PROCESS.hash_key != hash_key:
            _PROCESS = Metrics(connection_factory, hash_key)
        else:
            _PROCESS._connection_factory = connection_factory
        return _PROCESS
