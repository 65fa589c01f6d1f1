"""`python3 bench/soak.py`: the service in its production shape under a bounded mixed load, with faults inside it.

The deployment is what compose.yaml runs, on loopback: a redis-server started here (a free port, append-only
with ``appendfsync everysec``, in a temporary folder), ``gamma serve`` (gunicorn) and ``gamma worker`` (its
supervised worker processes), started through ``bench/loadtest.py``'s ``start_service``. For ``--minutes``
(default 10) an open-loop generator (``--rate`` requests/s, latency counted from each request's scheduled
time) sends a mix: new and cached uploads, new and cached image URLs (a loopback image server), page scans,
cancels, feedback and bad inputs (corrupt images, an oversized body, bad JSON); every accepted job is followed
by long polls. Inside the run, after the warm-up: a worker process SIGKILLed mid-batch, redis-server restarted
cleanly, redis-server SIGKILLed and, with ``--model``, the model file replaced by an unreadable one and a worker
SIGKILLed so that its restart must load it.

The report (printed, and JSON in ``--out``): requests by kind and status, p50/p99 per kind, the RSS of every
process at start, after the warm-up and at the end, Redis's INFO memory, jobs that never reached a terminal
state or were lost, the faults table, and the deployment's own figures read from ``/metrics``.

By default the workers run the stub detector (tests/stub_detector.py, ``--stub-delay-ms`` per image) so that
the soak measures the service; ``--model default`` runs the real model.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadtest import Http, ImageHost, _free_port, percentiles, start_service, wait_ready, web_images  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else shutil.which("redis-server")
TERMINAL = ("finished", "failed", "canceled")

# Share of the requests by kind (bad inputs: about 7 %). An oversized body (21 MB) is sent at most every 20 s.
MIX = {"upload_new": 14, "upload_cached": 20, "url_new": 10, "url_cached": 20, "scan": 5, "cancel": 5,
       "feedback": 5, "bad_corrupt": 4, "bad_json": 3, "bad_oversized": 1, "job_unknown": 2}
OVERSIZED_EVERY_S = 20.0


# --------------------------------------------------------------------------- redis-server
class RedisServer:
    """A redis-server of our own on a loopback port, append-only (fsync every second) in a temporary folder."""

    def __init__(self, folder: str):
        self.folder, self.port = folder, _free_port()
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile",
             os.path.join(self.folder, "redis.log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start (see {self.folder}/redis.log)")

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown (the append-only file flushed); SIGKILL: none."""
        self.process.send_signal(sig)
        self.process.wait(30)


# --------------------------------------------------------------------------- the deployment
class Deployment:
    def __init__(self, args, host: ImageHost, folder: str):
        self.folder = folder
        self.redis = RedisServer(os.path.join(folder, "redis"))
        os.makedirs(self.redis.folder)
        self.prefix = f"gamma-soak-{uuid.uuid4().hex[:8]}"
        self.env = {"REDIS_URL": self.redis.url, "GAMMA_REDIS_PREFIX": self.prefix, "RQ_KEY_PREFIX": self.prefix + ":rq",
                    "GAMMA_RATE_LIMIT": "0", "GAMMA_FETCH_TEST_ALLOW": host.allow, "GAMMA_LOG_LEVEL": "WARNING",
                    "GAMMA_WORKERS": str(args.workers), "GAMMA_DATA_DIR": os.path.join(folder, "data")}
        self.model_dir = None
        if args.model:
            # A copy the model fault may corrupt; the deployment serves it as GAMMA_MODEL does in production.
            source = ROOT / "models" / args.model if not os.path.isdir(args.model) else Path(args.model)
            self.model_dir = os.path.join(folder, "model")
            shutil.copytree(source, self.model_dir)
            self.env["GAMMA_MODEL"] = self.model_dir
        else:
            self.env.update({"GAMMA_DETECTOR": "stub_detector:make_detector",
                             "GAMMA_STUB_DELAY_MS": str(args.stub_delay_ms),
                             "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])})
        self.logs = {name: open(os.path.join(folder, f"{name}.log"), "wb") for name in ("api", "worker")}
        self.api = self.workers = None

    def start(self) -> str:
        self.redis.start()
        base, processes, self.mode = start_service(self.env, (self.logs["api"], self.logs["worker"]))
        self.api, self.workers = processes
        return base

    def stop(self) -> dict:
        codes = {}
        for name, process in (("api", self.api), ("worker", self.workers)):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in (("api", self.api), ("worker", self.workers)):
            if process is not None:
                try:
                    codes[name] = process.wait(90)
                except subprocess.TimeoutExpired:
                    process.kill()
                    codes[name] = "killed after 90 s"
        if self.redis.process is not None and self.redis.process.poll() is None:
            self.redis.stop()
        for handle in self.logs.values():
            handle.close()
        return codes

    def worker_children(self) -> list[psutil.Process]:
        """The supervised worker processes (multiprocessing spawn children of `gamma worker`)."""
        try:
            children = psutil.Process(self.workers.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [c for c in children if "spawn_main" in " ".join(_cmdline(c))]

    def processes(self) -> dict[str, psutil.Process]:
        """Every process of the deployment by role: redis, API (gunicorn master and workers), worker supervisor and
        worker processes (numbered by start order: a restarted one is a new entry)."""
        found = {"redis-server": psutil.Process(self.redis.process.pid)}
        for role, process in (("api", self.api), ("worker-supervisor", self.workers)):
            root = psutil.Process(process.pid)
            found[f"{role} (pid {root.pid})"] = root
            for child in root.children():
                kind = "worker" if "spawn_main" in " ".join(_cmdline(child)) else (
                    "api-worker" if role == "api" else "helper")
                found[f"{kind} (pid {child.pid})"] = child
        return found


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def rss_snapshot(deployment: Deployment) -> dict:
    out = {}
    for role, process in deployment.processes().items():
        try:
            out[role] = round(process.memory_info().rss / 2**20, 1)
        except psutil.Error:
            continue
    return out


def sample_rss(deployment: Deployment, t0: float, duration: float, timeline: list) -> None:
    """The RSS of the API's and the workers' processes together, and redis-server's, every tenth of the run."""
    for i in range(1, 11):
        time.sleep(max(0.0, t0 + i * duration / 10 - time.monotonic()))
        try:
            snap = rss_snapshot(deployment)
        except psutil.Error:
            continue
        timeline.append({"t_s": round(time.monotonic() - t0), "api": round(sum(v for k, v in snap.items()
                         if k.startswith(("api", "api-worker"))), 1), "workers": round(sum(
                         v for k, v in snap.items() if k.startswith("worker (")), 1), "redis": snap.get("redis-server")})


def redis_memory(deployment: Deployment) -> dict:
    info = deployment.redis.client().info("memory")
    keys = ("used_memory", "used_memory_rss", "used_memory_peak", "used_memory_dataset", "mem_fragmentation_ratio")
    out = {k: info[k] for k in keys if k in info}
    out["keys"] = deployment.redis.client().dbsize()
    return out


# --------------------------------------------------------------------------- the load
class Record:
    """Every request's kind, status and latency; every accepted job (its id, kind and time)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[tuple[str, object, float, float]] = []   # kind, status, latency s, monotonic time
        self.jobs: dict[str, dict] = {}                                # id -> kind, accepted_at, final
        self.bad_5xx: list[dict] = []                                  # 5xx bodies that are not a JSON error

    def add(self, kind: str, status, latency: float, at: float) -> None:
        with self.lock:
            self.requests.append((kind, status, latency, at))

    def accept(self, job_id: str, kind: str) -> None:
        with self.lock:
            self.jobs.setdefault(job_id, {"kind": kind, "accepted_at": time.monotonic(), "final": None})


class Load:
    def __init__(self, client: Http, host: ImageHost, images: list[tuple[str, bytes]], record: Record, args):
        self.client, self.host, self.images, self.record, self.args = client, host, images, record, args
        self.rng = random.Random(args.seed)
        self.counter = 0
        self.counter_lock = threading.Lock()
        self.cached: list[tuple[bytes, dict]] = []         # (bytes, result) known to be cached
        self.cached_urls: list[str] = list(host.urls)
        self.follow: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.last_oversized = 0.0
        self.dropped = 0
        self.pending: dict[str, bytes] = {}                 # job id -> bytes of an accepted new upload

    def fresh_bytes(self) -> bytes:
        """Bytes never seen before: a base image with a unique trailer after its end marker (decoded the same)."""
        with self.counter_lock:
            self.counter += 1
            n = self.counter
        fmt, data = self.images[n % len(self.images)]
        return data + b"soak-%d-%s" % (n, uuid.uuid4().hex.encode())

    # ---------------------------------------------------------------- one request of each kind
    def _timed(self, kind: str, scheduled: float, call):
        status = "connection_error"
        try:
            status, body = call()
        except OSError:
            body = b""
        self.record.add(kind, status, time.perf_counter() - scheduled, time.monotonic())
        if isinstance(status, int) and status >= 500:
            self._check_5xx(kind, status, body)
        return status, body

    def _check_5xx(self, kind: str, status: int, body: bytes) -> None:
        """A 5xx must be a JSON error; a 503 also says when to retry."""
        headers = getattr(self.client.local, "headers", None)
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            code = None
        if code is None or (status == 503 and not (headers and headers.get("Retry-After"))):
            with self.record.lock:
                self.record.bad_5xx.append({"kind": kind, "status": status, "body": body[:300].decode("latin-1")})

    def _accepted(self, kind: str, status, body: bytes) -> dict | None:
        if status == 200:
            return json.loads(body)
        if status == 202:
            job_id = json.loads(body)["job_id"]
            self.record.accept(job_id, kind)
            self.follow.put(job_id)
        return None

    def send(self, kind: str, scheduled: float) -> None:
        c = self.client
        if kind == "upload_new":
            data = self.fresh_bytes()
            status, body = self._timed(kind, scheduled, lambda: c.upload(data, "new.jpg"))
            self._accepted(kind, status, body)
            self._remember(data, status, body)
        elif kind == "upload_cached":
            if not self.cached:
                return self.send("upload_new", scheduled)
            data, _ = self.rng.choice(self.cached)
            status, body = self._timed(kind, scheduled, lambda: c.upload(data, "again.jpg"))
            self._accepted(kind, status, body)
        elif kind == "url_new":
            url = self._new_url()
            status, body = self._timed(kind, scheduled, lambda: c.analyze_url(url))
            if self._accepted(kind, status, body) is None and status == 202:
                self.cached_urls.append(url)
        elif kind == "url_cached":
            url = self.rng.choice(self.cached_urls)
            status, body = self._timed(kind, scheduled, lambda: c.analyze_url(url))
            self._accepted(kind, status, body)
        elif kind == "scan":
            urls = [self.rng.choice(self.cached_urls), self.rng.choice(self.cached_urls), self._new_url(),
                    f"http://{self.host.allow}/missing-{uuid.uuid4().hex[:8]}.jpg"]
            page = json.dumps({"page_url": f"http://{self.host.allow}/page.html", "image_urls": urls}).encode()
            status, body = self._timed(kind, scheduled, lambda: c.request(
                "POST", "/v1/scan", page, {"Content-Type": "application/json"}))
            self._accepted(kind, status, body)
        elif kind == "cancel":
            data = self.fresh_bytes()
            status, body = c.upload(data, "cancel.jpg")
            if status == 202:
                job_id = json.loads(body)["job_id"]
                self.record.accept(job_id, "cancel")
                status, body = self._timed(kind, scheduled, lambda: c.request("DELETE", f"/jobs/{job_id}"))
                self.follow.put(job_id)
        elif kind == "feedback":
            if not self.cached:
                return self.send("upload_new", scheduled)
            _, result = self.rng.choice(self.cached)
            entry = json.dumps({"sha256": result["image"]["sha256"], "result": result,
                                "label": self.rng.choice(("ai", "real")), "note": "soak"}).encode()
            self._timed(kind, scheduled, lambda: c.request("POST", "/v1/feedback", entry,
                                                             {"Content-Type": "application/json"}))
        elif kind == "bad_corrupt":
            _, data = self.rng.choice(self.images)
            corrupt = data[: len(data) // 2] if self.rng.random() < 0.5 else os.urandom(self.rng.randint(64, 40000))
            status, body = self._timed(kind, scheduled, lambda: c.upload(corrupt, "corrupt.jpg"))
            self._accepted(kind, status, body)
        elif kind == "bad_json":
            path = self.rng.choice(("/v1/analyze", "/v1/scan", "/v1/feedback"))
            self._timed(kind, scheduled, lambda: c.request("POST", path, b'{"url": "http://',
                                                             {"Content-Type": "application/json"}))
        elif kind == "bad_oversized":
            if time.monotonic() - self.last_oversized < OVERSIZED_EVERY_S:
                return self.send("bad_json", scheduled)
            self.last_oversized = time.monotonic()
            self._timed(kind, scheduled, lambda: oversized_upload(c, 21 * 2**20))
        elif kind == "job_unknown":
            self._timed(kind, scheduled, lambda: c.request("GET", f"/jobs/{uuid.uuid4()}"))

    def _new_url(self) -> str:
        path = f"/n-{uuid.uuid4().hex}.jpg"
        self.host.files[path] = self.fresh_bytes()
        return f"http://{self.host.allow}{path}"

    def _remember(self, data: bytes, status, body: bytes) -> None:
        """Uploads whose result is (or will be) cached: re-uploaded and given feedback later."""
        if status == 200:
            self.cached.append((data, json.loads(body)))
        elif status == 202 and len(self.cached) < 500:
            self.pending[json.loads(body)["job_id"]] = data

    # ---------------------------------------------------------------- followers
    def poller(self) -> None:
        while True:
            job_id = self.follow.get()
            if job_id is None:
                return
            self._follow(job_id)

    def _follow(self, job_id: str) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            start = time.perf_counter()
            status, body = self._timed("long_poll", start, lambda: self.client.request(
                "GET", f"/jobs/{job_id}?wait={self.args.wait}", timeout=self.args.wait + 30))
            if status == 200:
                view = json.loads(body)
                if view["status"] in TERMINAL:
                    self.record.jobs[job_id]["final"] = view["status"]
                    data = self.pending.pop(job_id, None)
                    if data is not None and view["status"] == "finished":
                        self.cached.append((data, view["result"]))
                    return
            elif status == 404:
                self.record.jobs[job_id]["final"] = "not_found"
                return
            elif self.stop.is_set() and status == "connection_error":
                return
            else:
                time.sleep(0.5)   # 503 while Redis is away: as a client would, after its Retry-After

    # ---------------------------------------------------------------- the open loop
    def run_in_background(self, until: float, senders: int = 24, pollers: int = 12) -> list[threading.Thread]:
        """Start the senders, the long-polling followers and the open loop that feeds the senders until ``until``;
        return the threads to join (the loop's and the senders')."""
        loop = threading.Thread(target=self._loop, args=(until, senders, pollers), daemon=True)
        loop.start()
        time.sleep(0.5)
        return [loop]

    def _loop(self, until: float, senders: int, pollers: int) -> None:
        due: queue.Queue = queue.Queue()
        kinds, weights = list(MIX), list(MIX.values())

        def sender():
            while True:
                item = due.get()
                if item is None:
                    return
                try:
                    self.send(*item)
                except Exception as exc:   # a generator bug must not stop the soak: counted, and shown
                    self.record.add(item[0], f"generator error: {type(exc).__name__}: {exc}"[:120], 0.0,
                                    time.monotonic())

        threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
        threads += [threading.Thread(target=self.poller, daemon=True) for _ in range(pollers)]
        for t in threads:
            t.start()
        start, i = time.perf_counter(), 0
        while time.monotonic() < until:
            scheduled = start + i / self.args.rate
            i += 1
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if due.qsize() > 500:   # the service stalled: bounded, counted, not queued without end
                self.dropped += 1
                continue
            due.put((self.rng.choices(kinds, weights)[0], scheduled))
        for _ in range(senders):
            due.put(None)
        for t in threads[:senders]:
            t.join()


def oversized_upload(client: Http, size: int) -> tuple[object, bytes]:
    """POST ``size`` bytes, reading while sending: the server answers 413 without reading the body and closes, so
    a client that only reads after sending everything meets a reset instead of the answer. ``refused_unread``: the
    connection closed before any answer arrived (the body was refused unread all the same)."""
    import select
    import socket

    head = (f"POST /v1/analyze HTTP/1.1\r\nHost: {client.host}:{client.port}\r\nContent-Type: "
            f"application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n").encode()
    chunk, sent, answer = b"\xff" * 65536, 0, b""
    with socket.create_connection((client.host, client.port), timeout=30) as sock:
        try:
            sock.sendall(head)
            while sent < size and not select.select([sock], [], [], 0)[0]:
                sent += sock.send(chunk[: size - sent])
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    if not answer.startswith(b"HTTP/1."):
        return "refused_unread", b""
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# --------------------------------------------------------------------------- faults
class Faults:
    """Each fault is one row of the report's table; its window (start to recovery) is where 503s are expected."""

    def __init__(self, deployment: Deployment, client: Http, record: Record, load: Load):
        self.deployment, self.client, self.record, self.load = deployment, client, record, load
        self.rows: list[dict] = []
        self.windows: list[tuple[float, float]] = []
        self.examples: dict[str, list] = defaultdict(list)   # jobs failed without a specific error, with RQ's reason

    def _rq(self):
        from rq.job import Job
        from rq.registry import StartedJobRegistry
        from rq.serializers import JSONSerializer
        from rq.worker import Worker

        return Job, StartedJobRegistry, JSONSerializer, Worker

    def _job_states(self, ids) -> Counter:
        """Each job's state as Redis holds it: its RQ status, with a failed job's error code, or `missing`."""
        Job, _, JSONSerializer, _ = self._rq()
        connection = self.deployment.redis.client()
        states = Counter()
        for job_id in ids:
            try:
                job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
            except Exception:
                states["missing"] += 1
                continue
            status = job.get_status(refresh=False)
            status = getattr(status, "value", status)
            if status == "failed":
                code = (job.meta or {}).get("error", {}).get("code", "no error recorded")
                status = f"failed ({code})"
                seen = {e["job"] for e in self.examples[status]}
                if code in ("internal_error", "no error recorded") and job_id not in seen and len(seen) < 5:
                    result = job.latest_result()   # what RQ recorded: the reason behind a bare internal_error
                    reason = (result.exc_string or "").strip().splitlines()[-1:] if result else []
                    self.examples[status].append({"job": job_id, "kind": (job.meta or {}).get("kind"),
                                                  "rq_reason": reason[0][:300] if reason else None})
            states[status] += 1
        return states

    def _wait_ready(self, seconds: float = 90) -> float | None:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            try:
                if self.client.request("GET", "/readyz", timeout=5)[0] == 200:
                    return round(time.monotonic() - start, 2)
            except OSError:
                pass
            time.sleep(0.2)
        return None

    def _wait_terminal(self, ids, seconds: float) -> Counter:
        deadline = time.monotonic() + seconds
        while True:
            states = self._job_states(ids)
            if time.monotonic() > deadline or not any(s in states for s in ("started", "queued", "scheduled")):
                return states
            time.sleep(1.0)

    def worker_kill(self, grace_s: float) -> None:
        """SIGKILL the worker process that holds started jobs (mid-batch); its jobs must end, none stay started."""
        Job, StartedJobRegistry, JSONSerializer, Worker = self._rq()
        connection = self.deployment.redis.client()
        registry = StartedJobRegistry("inference", connection=connection, serializer=JSONSerializer)
        start, victim, batch = time.monotonic(), None, []
        while victim is None and time.monotonic() - start < 60:
            children = {c.pid for c in self.deployment.worker_children()}
            by_worker = defaultdict(list)
            for job_id in registry.get_job_ids():
                try:
                    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
                except Exception:
                    continue
                if job.worker_name:
                    by_worker[job.worker_name].append((job_id, (job.args[0] if job.args else {}).get("source")))
            for name, ids in sorted(by_worker.items(), key=lambda kv: -len(kv[1])):
                worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
                if worker is not None and worker.pid in children:
                    victim, batch = worker.pid, [job_id for job_id, _ in ids]
                    sources = dict(Counter(source for _, source in ids))
                    break
            else:
                time.sleep(0.02)
        row = {"fault": "worker process SIGKILLed mid-batch"}
        if victim is None:
            self.rows.append({**row, "result": "no worker held a started job within 60 s: not injected"})
            return
        before = {c.pid for c in self.deployment.worker_children()}
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        restarted = None
        while time.monotonic() - t0 < 30:
            now = {c.pid for c in self.deployment.worker_children()}
            if len(now) == len(before) and now != before:
                restarted = round(time.monotonic() - t0, 2)
                break
            time.sleep(0.1)
        states = self._wait_terminal(batch, grace_s + 30)
        self.windows.append((t0, time.monotonic()))
        self.rows.append({**row, "jobs_in_batch": len(batch), "their_sources": sources, "restarted_after_s": restarted,
                          "job_outcomes": dict(states), "ended_in_s": round(time.monotonic() - t0, 1),
                          "left_started": states.get("started", 0)})

    def redis_down(self, sig: int, down_s: float = 3.0) -> None:
        """Stop redis-server (SIGTERM: clean; SIGKILL), probe the API while it is away, start it again; count the
        accepted jobs it lost."""
        name = "redis-server restarted cleanly (SIGTERM)" if sig == signal.SIGTERM else "redis-server SIGKILLed"
        with self.record.lock:
            accepted = dict(self.record.jobs)
        t0 = time.monotonic()
        self.deployment.redis.stop(sig)
        probes, bad = Counter(), []
        probe_client = Http(self.load.client_base)
        while time.monotonic() - t0 < down_s:
            for method, path, body, headers in (
                    ("GET", "/readyz", None, {}), ("GET", f"/jobs/{uuid.uuid4()}", None, {}),
                    ("POST", "/v1/analyze", json.dumps({"url": self.load.cached_urls[0]}).encode(),
                     {"Content-Type": "application/json"})):
                try:
                    status, payload = probe_client.request(method, path, body, headers, timeout=15)
                except OSError as exc:
                    probes[f"{method} {path.split('/')[1]}: {type(exc).__name__}"] += 1
                    continue
                retry_after = probe_client.local.headers.get("Retry-After")
                try:
                    code = json.loads(payload).get("code") or json.loads(payload).get("status")
                except ValueError:
                    code = None
                key = f"{method} /{path.split('/')[1]}{'/…' if path.count('/') > 1 else ''}: {status}"
                probes[key] += 1
                if status >= 500 and (code is None or (status == 503 and path != "/readyz" and not retry_after)
                                      or b"Traceback" in payload):
                    bad.append({"request": f"{method} {path}", "status": status, "body": payload[:200].decode("latin-1")})
            time.sleep(0.3)
        self.deployment.redis.start()
        recovered = self._wait_ready()
        self.windows.append((t0, time.monotonic() + 2))
        # Jobs accepted before the stop that Redis no longer knows: lost (the last second's for SIGKILL at most).
        states = self._job_states(accepted)
        last_second = [j for j, v in accepted.items() if v["accepted_at"] > t0 - 1.0]
        lost_last = self._job_states(last_second).get("missing", 0)
        self.rows.append({"fault": name, "down_s": down_s, "accepted_jobs_before": len(accepted),
                          "accepted_jobs_lost": states.get("missing", 0),
                          "of_them_accepted_in_last_second": lost_last, "api_answers_while_down": dict(probes),
                          "answers_not_a_json_error_or_without_retry_after": bad,
                          "ready_again_after_restart_s": recovered})

    def model_unreadable(self, watch_s: float = 30.0) -> None:
        """Replace the model's ONNX files by unreadable bytes, SIGKILL one worker: its restart cannot load the
        model; readyz must say why, the supervisor must not crash-loop, the other worker must keep serving."""
        folder = Path(self.deployment.model_dir)
        saved = {p: p.read_bytes() for p in folder.glob("*.onnx")}
        for path in saved:
            path.write_bytes(b"not an ONNX model\n" * 64)
        children = self.deployment.worker_children()
        victim = children[0].pid
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        seen, readyz, served = set(), [], Counter()
        while time.monotonic() - t0 < watch_s:
            seen |= {c.pid for c in self.deployment.worker_children()} - {c.pid for c in children}
            status, body = self.client.request("GET", "/readyz", timeout=5)
            readyz.append((status, json.loads(body)))
            data = self.load.fresh_bytes()
            status, body = self.client.upload(data, "during-model-fault.jpg")
            if status == 202:
                job_id = json.loads(body)["job_id"]
                self.record.accept(job_id, "model_fault_probe")
                status, body = self.client.request("GET", f"/jobs/{job_id}?wait=10", timeout=40)
                served[json.loads(body).get("status", status)] += 1
                self.load.follow.put(job_id)   # followed to its end like the load's
            time.sleep(1.0)
        for path, data in saved.items():   # the deployment is repaired: the worker loads it at its next restart
            path.write_bytes(data)
        self.windows.append((t0, time.monotonic() + 5))
        self.rows.append({"fault": "model file replaced by an unreadable one, a worker SIGKILLed",
                          "watched_s": watch_s, "worker_starts_while_unreadable": len(seen),
                          "readyz_last": {"status": readyz[-1][0], "body": readyz[-1][1]} if readyz else None,
                          "readyz_statuses": dict(Counter(s for s, _ in readyz)),
                          "uploads_while_unreadable": dict(served)})


# --------------------------------------------------------------------------- report
def metrics_figures(client: Http) -> dict:
    """What an operator reads from /metrics: requests by status, jobs by outcome, batches, queue, workers."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = client.request("GET", "/metrics")
    out: dict = {"http_status": status}
    if status != 200:
        return out
    requests, jobs, lookups = Counter(), Counter(), Counter()
    sums = defaultdict(float)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "gamma_http_requests_total":
                requests[sample.labels["status"]] += sample.value
            elif sample.name == "gamma_jobs_total":
                jobs[f"{sample.labels['kind']} {sample.labels['outcome']}"] += sample.value
            elif sample.name == "gamma_cache_lookups_total":
                lookups[sample.labels["result"]] += sample.value
            elif sample.name in ("gamma_queue_depth", "gamma_workers_alive"):
                out[sample.name] = sample.value
            elif sample.name.endswith(("_sum", "_count")) and not sample.name.startswith("gamma_http"):
                sums[sample.name] += sample.value
    out["http_requests_by_status"] = {k: int(v) for k, v in sorted(requests.items())}
    out["jobs_by_outcome"] = {k: int(v) for k, v in sorted(jobs.items())}
    out["cache_lookups"] = {k: int(v) for k, v in lookups.items()}
    for name in ("gamma_batch_size", "gamma_inference_seconds", "gamma_job_queue_seconds"):
        if sums.get(f"{name}_count"):
            out[f"{name}_mean"] = round(sums[f"{name}_sum"] / sums[f"{name}_count"], 4)
    return out


def summarise(record: Record, windows: list[tuple[float, float]]) -> tuple[dict, dict]:
    by_kind: dict = {}
    unexpected = Counter()
    with record.lock:
        requests = list(record.requests)
    groups = defaultdict(list)
    for kind, status, latency, at in requests:
        in_window = any(a <= at <= b for a, b in windows)
        groups[kind].append((status, latency, in_window))
        if isinstance(status, int) and status >= 500 and not (status == 503 and in_window):
            unexpected[f"{kind} {status}{' (in a fault window)' if in_window else ''}"] += 1
        elif not isinstance(status, int) and status != "refused_unread" and not in_window:
            unexpected[f"{kind} {status}"] += 1
    for kind in sorted(groups):
        rows = groups[kind]
        statuses = Counter(str(s) for s, _, _ in rows)
        pct = percentiles([lat for s, lat, _ in rows if isinstance(s, int)])
        # Outside the fault windows: what a client sees in ordinary operation (the windows hold ~2 % of requests,
        # enough to set the whole run's p99 by themselves).
        calm = percentiles([lat for s, lat, w in rows if isinstance(s, int) and not w])
        by_kind[kind] = {"requests": len(rows), "by_status": dict(sorted(statuses.items())),
                         "p50_ms": pct["p50"], "p99_ms": pct["p99"],
                         "p50_ms_outside_faults": calm["p50"], "p99_ms_outside_faults": calm["p99"]}
    return by_kind, dict(unexpected)


def growth(before: dict, after: dict) -> dict:
    """RSS change per process that lived through both snapshots, and over the service's processes together."""
    out = {role: round(100 * (after[role] - before[role]) / before[role], 1) for role in before if role in after}
    service = [r for r in before if r in after and r != "redis-server"]
    total_before, total_after = sum(before[r] for r in service), sum(after[r] for r in service)
    out["service processes together (not redis)"] = round(100 * (total_after - total_before) / total_before, 1)
    return out


def run(args) -> dict:
    from gamma_detect.export.bench import simd_flags
    from gamma_detect.runtime.cpu import cpu_model

    folder = tempfile.mkdtemp(prefix="gamma-soak-")
    duration = args.minutes * 60
    warmup = duration * 0.2
    images = web_images(args.images, args.seed)
    host = ImageHost(images)
    deployment = Deployment(args, host, folder)
    os.environ["RQ_KEY_PREFIX"] = deployment.env["RQ_KEY_PREFIX"]   # before rq is imported (the faults read RQ)
    report: dict = {
        "command": " ".join(["python3", "bench/soak.py", *sys.argv[1:]]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "simd": simd_flags(),
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "settings": {"minutes": args.minutes, "rate_per_s": args.rate, "workers": args.workers,
                     "detector": f"model {args.model}" if args.model else f"stub ({args.stub_delay_ms} ms per image)",
                     "long_poll_wait_s": args.wait, "mix": MIX},
    }
    print(f"machine: {report['machine']['cpu']}, {os.cpu_count()} CPUs ({', '.join(report['machine']['simd'])})",
          flush=True)
    base = deployment.start()
    report["service"] = deployment.mode
    client = Http(base)
    record = Record()
    load = Load(client, host, images, record, args)
    load.client_base = base
    faults = Faults(deployment, client, record, load)
    try:
        wait_ready(client)
        for url in host.urls:   # the cached URLs are cached
            client.follow(*client.analyze_url(url), time.monotonic() + 120)
        rss = {"start": rss_snapshot(deployment)}
        redis_mem = {"start": redis_memory(deployment)}
        t0 = time.monotonic()
        threads = load.run_in_background(t0 + duration)
        timeline: list = []
        report["rss_timeline_mib"] = timeline
        threading.Thread(target=sample_rss, args=(deployment, t0, duration, timeline), daemon=True).start()
        plan = [(0.2, "warm-up", None), (0.35, "worker", faults.worker_kill), (0.5, "redis clean",
                lambda grace: faults.redis_down(signal.SIGTERM)), (0.65, "redis kill",
                lambda grace: faults.redis_down(signal.SIGKILL))]
        if deployment.model_dir:
            plan.append((0.8, "model", lambda grace: faults.model_unreadable()))
        grace = 5 + 15   # GAMMA_HEARTBEAT + GAMMA_HEARTBEAT_GRACE defaults: when an abandoned job is reaped
        for share, what, action in plan:
            delay = t0 + share * duration - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elapsed = round(time.monotonic() - t0)
            if action is None:
                rss["after warm-up"] = rss_snapshot(deployment)
                redis_mem["after warm-up"] = redis_memory(deployment)
                print(f"[{elapsed:>4} s] warm-up done: {len(record.requests)} requests", flush=True)
                continue
            print(f"[{elapsed:>4} s] fault: {what}", flush=True)
            action(grace)
            print(f"           {json.dumps(faults.rows[-1])[:600]}", flush=True)
        for t in threads:
            t.join()
        print(f"[{round(time.monotonic() - t0):>4} s] load done; following the accepted jobs to their end", flush=True)
        drain_start = time.monotonic()
        while time.monotonic() - drain_start < 120 and (not load.follow.empty() or any(
                v["final"] is None for v in list(record.jobs.values()))):
            time.sleep(1.0)
        load.stop.set()
        rss["end"] = rss_snapshot(deployment)
        redis_mem["end"] = redis_memory(deployment)
        report["metrics"] = metrics_figures(client)
        states = faults._job_states(list(record.jobs))
        report["jobs"] = {"accepted": len(record.jobs), "by_kind": dict(Counter(v["kind"] for v in record.jobs.values())),
                          "states_in_redis_at_end": dict(states),
                          "never_terminal": sum(n for s, n in states.items() if s in ("queued", "started", "scheduled",
                                                                                     "deferred")),
                          "lost": states.get("missing", 0),
                          "client_saw": dict(Counter(str(v["final"]) for v in record.jobs.values())),
                          "failed_without_a_specific_error": dict(faults.examples)}
    finally:
        for _ in range(64):
            load.follow.put(None)
        report["exit_codes"] = deployment.stop()
        host.server.shutdown()
    report["requests"], report["unexpected"] = summarise(record, faults.windows)
    report["requests_total"] = len(record.requests)
    report["generator_dropped"] = load.dropped
    report["faults"] = faults.rows
    report["rss_mib"] = rss
    report["rss_growth_after_warmup_pct"] = growth(rss["after warm-up"], rss["end"])
    report["redis_memory"] = redis_mem
    report["bad_5xx_bodies"] = record.bad_5xx[:10]
    logs = {}
    for name in ("api", "worker"):
        text = Path(folder, f"{name}.log").read_text(errors="replace")
        logs[name] = {"tracebacks": text.count("Traceback"), "lines": text.count("\n")}
    # Every restart of a worker process the supervisor made (the injected kills included), with why.
    logs["worker"]["worker_process_restarts"] = dict(Counter(
        line.split("stopped (", 1)[1].split(")", 1)[0] for line in
        Path(folder, "worker.log").read_text(errors="replace").splitlines() if "starting it again" in line))
    report["logs"] = logs
    report["goals"] = {
        "no 5xx outside fault windows": not report["unexpected"],
        "0 lost jobs": report["jobs"]["lost"] == 0 and report["jobs"]["never_terminal"] == 0,
        "RSS growth after warm-up < 10 % (service processes)":
            report["rss_growth_after_warmup_pct"]["service processes together (not redis)"] < 10}
    if args.keep:
        report["folder"] = folder
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def print_report(report: dict) -> None:
    print(f"\n{report['command']}\n{report['machine']['cpu']} ({report['machine']['cpus']} CPUs), {report['service']}")
    print(f"\n{'kind':<16}{'requests':>9}  {'p50 ms':>8}  {'p99 ms':>8}  {'outside faults: p50':>20}  {'p99':>8}  statuses")
    for kind, row in report["requests"].items():
        statuses = ", ".join(f"{k}: {v}" for k, v in row["by_status"].items())
        print(f"{kind:<16}{row['requests']:>9}  {row['p50_ms']!s:>8}  {row['p99_ms']!s:>8}  "
              f"{row['p50_ms_outside_faults']!s:>20}  {row['p99_ms_outside_faults']!s:>8}  {statuses}")
    print(f"\nunexpected answers: {report['unexpected'] or 'none'}")
    print(f"jobs: {json.dumps(report['jobs'])}")
    print("\nfaults:")
    for row in report["faults"]:
        print(f"  {json.dumps(row)}")
    print("\nRSS MiB:")
    roles = list(dict.fromkeys(r for snap in report["rss_mib"].values() for r in snap))
    print(f"  {'process':<32}" + "".join(f"{k:>16}" for k in report["rss_mib"]))
    for role in roles:
        print(f"  {role:<32}" + "".join(f"{snap.get(role, '-')!s:>16}" for snap in report["rss_mib"].values()))
    print(f"  growth after warm-up %: {json.dumps(report['rss_growth_after_warmup_pct'])}")
    print(f"redis memory: {json.dumps(report['redis_memory'])}")
    print(f"/metrics: {json.dumps(report['metrics'])}")
    print(f"logs: {json.dumps(report['logs'])}")
    print(f"goals: {json.dumps(report['goals'])}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 bench/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (the warm-up is its first 20 %%)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s offered (open loop)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of `gamma worker`")
    parser.add_argument("--model", default=None,
                        help="serve this model (a folder, or a name under models/, e.g. default) instead of the stub")
    parser.add_argument("--stub-delay-ms", type=float, default=25.0, help="the stub detector's time per image")
    parser.add_argument("--images", type=int, default=16, help="distinct base images (300 to 2000 px, JPEG/WebP)")
    parser.add_argument("--wait", type=int, default=10, help="seconds of each long poll")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, redis data)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "soak.json"), help="write the report as JSON")
    args = parser.parse_args(argv)
    report = run(args)
    print_report(report)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"\nwritten to {args.out}")
    return 0 if all(report["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
