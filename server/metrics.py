"""Prometheus metrics, hand-written text exposition (format 0.0.4), shared through Redis.

Each process (gunicorn workers, RQ workers) counts in memory and adds its deltas to one Redis
hash every second, so `/metrics` on any API process shows the whole deployment. Gauges (queue
depth, live workers) are read at scrape time.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict

log = logging.getLogger("gamma.server.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)

# name -> (type, help)
METRICS = {
    "gamma_http_requests_total": ("counter", "HTTP requests by endpoint, method and status"),
    "gamma_http_request_duration_seconds": ("histogram", "HTTP request latency by endpoint"),
    "gamma_cache_lookups_total": ("counter", "result cache lookups by outcome (hit, miss)"),
    "gamma_jobs_total": ("counter", "jobs ended by kind and outcome (finished, failed, retried, canceled)"),
    "gamma_batch_size": ("histogram", "images per inference batch"),
    "gamma_inference_seconds": ("histogram", "Detector.predict time per batch"),
    "gamma_job_queue_seconds": ("histogram", "time jobs waited in the queue"),
    "gamma_queue_depth": ("gauge", "jobs waiting per queue"),
    "gamma_workers_alive": ("gauge", "workers that sent a heartbeat recently"),
    "gamma_feedback_total": ("counter", "feedback entries received, by label"),
}


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


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
        with self._lock:
            self._deltas[name + _labels(labels or {})] += value
        self._ensure_thread()

    def observe(self, name: str, value: float, labels: dict | None = None, buckets=LATENCY_BUCKETS) -> None:
        labels = labels or {}
        with self._lock:
            for bound in buckets:
                if value <= bound:
                    self._deltas[f"{name}_bucket" + _labels({**labels, "le": _fmt(bound)})] += 1
            self._deltas[f"{name}_bucket" + _labels({**labels, "le": "+Inf"})] += 1
            self._deltas[f"{name}_sum" + _labels(labels)] += value
            self._deltas[f"{name}_count" + _labels(labels)] += 1
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
                for field, value in deltas.items():
                    if float(value).is_integer():
                        pipe.hincrby(self.hash_key, field, int(value))
                    else:
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
    def render(self, connection, gauges: dict[str, list[tuple[dict, float]]]) -> str:
        self.flush()
        stored = connection.hgetall(self.hash_key)
        series: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for raw_field, raw_value in stored.items():
            field = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
            value = raw_value.decode() if isinstance(raw_value, bytes) else raw_value
            series[_family(field)].append((field, value))
        for name, samples in gauges.items():
            series[name].extend((name + _labels(labels), _fmt(value)) for labels, value in samples)
        lines = []
        for name in sorted(set(series) | set(k for k in METRICS if METRICS[k][0] == "gauge")):
            kind, text = METRICS.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            for field, value in sorted(series.get(name, []), key=lambda fv: _sort_key(fv[0])):
                lines.append(f"{field} {value}")
        return "\n".join(lines) + "\n"


def _family(field: str) -> str:
    name = field.split("{", 1)[0]
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and METRICS.get(name[: -len(suffix)], ("",))[0] == "histogram":
            return name[: -len(suffix)]
    return name


_LE = re.compile(r'le="([^"]+)"')


def _sort_key(field: str):
    name, _, labels = field.partition("{")
    match = _LE.search(labels)
    le = float("inf") if not match or match.group(1) == "+Inf" else float(match.group(1))
    labels = _LE.sub("", labels).replace(",,", ",").strip(",}")
    order = 0
    for index, suffix in enumerate(("_bucket", "_sum", "_count")):
        if name.endswith(suffix):
            name, order = name[: -len(suffix)], index
    return (name, labels, order, le)


def _fmt(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value)) if abs(value) < 1e15 else repr(value)


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
