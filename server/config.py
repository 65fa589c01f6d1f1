"""Settings: every knob from an environment variable with the ``GAMMA_`` prefix (plus ``REDIS_URL``).

The README's table is generated from ``FIELDS`` (``python -m gamma_detect.server.config``),
so the names, defaults and meanings are written once, here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gamma_detect.contract import LIMITS

PREFIX = "GAMMA_"


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "gamma-detect")


def configure_logging(settings: "Settings") -> None:
    logging.basicConfig(level=getattr(logging, settings.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # no per-request lines (URLs stay out of logs)


@dataclass(frozen=True)
class Settings:
    # --- model and workers
    model: str = dataclasses.field(default="", metadata={"help": "model artifact or folder; empty: the bundled default model"})
    backend: str = field(default="auto", metadata={"help": "runtime backend: auto, onnxruntime, onnxruntime-cpu, onnxruntime-cuda, tensorrt"})
    variant: str = field(default="fp32", metadata={"help": "ONNX artifact variant from the manifest: fp32, int8, fp16, compact"})
    workers: int = field(default=0, metadata={"help": "batching worker processes of `gamma serve` (embedded Redis) or `gamma worker`; 0: one per core"})
    threads: int = field(default=0, metadata={"help": "inference threads per worker; 0: one when there are several workers, else all cores"})
    worker_nice: int = field(default=10, metadata={"help": "how many steps below the API's CPU priority the worker processes run (0: the same): cached answers stay fast while inference holds every core"})
    detector: str = field(default="", metadata={"help": "advanced/tests: `module:function` returning a Detector instead of load_detector"})
    batch_size: int = field(default=8, metadata={"help": "most images a worker runs as one batch"})
    batch_wait_ms: int = field(default=10, metadata={"help": "how long a worker waits for more jobs to fill a batch"})
    job_timeout: int = field(default=120, metadata={"help": "seconds one job (or batch) may run"})
    queued_ttl: int = field(default=900, metadata={"help": "seconds a job may wait in the queue before it is dropped"})
    result_ttl: int = field(default=3600, metadata={"help": "seconds a finished job (and its result) stays readable at /jobs/<id>"})
    failure_ttl: int = field(default=3600, metadata={"help": "seconds a failed job stays readable at /jobs/<id>"})
    fetch_retries: int = field(default=2, metadata={"help": "retries (with backoff) for a job whose image fetch failed"})
    heartbeat: int = field(default=5, metadata={"help": "worker heartbeat interval, seconds"})
    heartbeat_grace: int = field(default=15, metadata={"help": "seconds past a missed heartbeat before a job counts as abandoned"})
    # --- Redis and storage
    redis_url: str = field(default="", metadata={"env": "REDIS_URL", "help": "Redis to use; empty: `gamma serve` starts an embedded Redis and its worker processes"})
    redis_prefix: str = field(default="gamma", metadata={"help": "prefix of every Redis key (RQ's too)"})
    data_dir: str = field(default_factory=_default_data_dir, metadata={"help": "embedded Redis data (append-only file); default `$XDG_DATA_HOME/gamma-detect`"})
    cache_ttl: int = field(default=86400, metadata={"help": "seconds a result and its heatmap are cached (by image sha256 and model digest)"})
    url_ttl: int = field(default=3600, metadata={"help": "seconds an image URL is remembered as the sha256 it served"})
    # --- limits
    max_upload_bytes: int = field(default=LIMITS["upload_bytes"], metadata={"help": "largest upload or fetched image, bytes"})
    max_pixels: int = field(default=LIMITS["image_pixels"], metadata={"help": "largest image, pixels (decompression-bomb limit)"})
    max_scan_images: int = field(default=LIMITS["scan_images"], metadata={"help": "most image URLs in one /v1/scan page"})
    fetch_timeout: float = field(default=10.0, metadata={"help": "seconds for fetching one image URL (connect, read, whole body)"})
    fetch_test_allow: str = field(default="", metadata={"help": "TESTS ONLY: comma-separated `ip:port` a fetch may reach although not global; keep empty"})
    longpoll_max: int = field(default=LIMITS["longpoll_seconds"], metadata={"help": "most seconds `GET /jobs/<id>?wait=N` waits"})
    rate_limit: float = field(default=20.0, metadata={"help": "requests per second per API key (or per client address without keys); 0: no limit"})
    rate_burst: int = field(default=200, metadata={"help": "burst allowance of the rate limit, requests"})
    # --- access
    require_keys: str = field(default="auto", metadata={"help": "API keys: auto (required once one exists), always, never"})
    allowed_origins: str = field(default="", metadata={"help": "comma-separated CORS origins, e.g. `chrome-extension://<id>`; empty: no CORS"})
    trust_proxy: int = field(default=0, metadata={"help": "number of reverse proxies whose X-Forwarded-For to trust"})
    heatmap_side: int = field(default=512, metadata={"help": "longest side of the stored heatmap (rendered at the image's size on request)"})
    # --- processes
    web_concurrency: int = field(default=2, metadata={"help": "gunicorn processes (with REDIS_URL set)"})
    web_threads: int = field(default=16, metadata={"help": "threads per gunicorn process (long-polls hold one each)"})
    log_level: str = field(default="INFO", metadata={"help": "log level"})

    def __post_init__(self):
        if self.require_keys not in ("auto", "always", "never"):
            raise ValueError("GAMMA_REQUIRE_KEYS must be auto, always or never")
        for name in ("batch_size", "job_timeout", "queued_ttl", "result_ttl", "failure_ttl", "cache_ttl", "url_ttl",
                     "max_upload_bytes", "max_pixels", "heartbeat"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{env_name(next(f for f in dataclasses.fields(self) if f.name == name))} must be positive")
        for name in ("workers", "threads", "worker_nice"):
            if getattr(self, name) < 0:
                raise ValueError(f"GAMMA_{name.upper()} must be 0 (automatic) or a positive count")

    # ---------------------------------------------------------------- derived
    def key(self, *parts: str) -> str:
        """A Redis key under the configured prefix."""
        return ":".join((self.redis_prefix.rstrip(":"), *parts))

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.allowed_origins.split(",") if o.strip())

    @property
    def test_allow(self) -> frozenset[tuple[str, int]]:
        allowed = set()
        for item in self.fetch_test_allow.split(","):
            item = item.strip()
            if item:
                host, _, port = item.rpartition(":")
                allowed.add((host.strip("[]"), int(port)))
        return frozenset(allowed)

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> "Settings":
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            name = env_name(f)
            if name in environ:
                values[f.name] = _parse(f, environ[name])
        values.update(overrides)
        return cls(**values)


def env_name(f: dataclasses.Field) -> str:
    return f.metadata.get("env") or PREFIX + f.name.upper()


def _parse(f: dataclasses.Field, raw: str):
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str}[str(f.type)]
    if kind is int:
        return int(float(raw))
    if kind is float:
        return float(raw)
    return raw.strip()


FIELDS = dataclasses.fields(Settings)


def markdown_table() -> str:
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in FIELDS:
        default = f.default if f.default is not dataclasses.MISSING else "(see meaning)"
        shown = f"`{default}`" if default not in ("", "(see meaning)") else ("empty" if default == "" else default)
        lines.append(f"| `{env_name(f)}` | {shown} | {f.metadata.get('help', '')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())


def configure_rq(settings: Settings) -> None:
    """Give RQ the service's key prefix (``<redis_prefix>:rq``, unless RQ_KEY_PREFIX is set) before RQ is first
    imported, which is when RQ reads it; refuse to go on if RQ was already imported with another prefix."""
    wanted = os.environ.setdefault("RQ_KEY_PREFIX", settings.redis_prefix.rstrip(":") + ":rq")
    if "rq" in sys.modules:
        from rq.defaults import RQ_KEY_PREFIX

        if RQ_KEY_PREFIX != wanted:
            raise RuntimeError(f"rq was imported with key prefix {RQ_KEY_PREFIX!r} before the service could set "
                               f"{wanted!r}: call gamma_detect.server.config.configure_rq(settings) before importing "
                               "rq, or set RQ_KEY_PREFIX")
