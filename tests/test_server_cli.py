"""`gamma serve` (embedded Redis + in-process worker), `gamma scan`, `gamma feedback export`."""

import hashlib
import json
import shutil
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import requests
import server_support
from loopback import LoopbackServer
from server_support import image_server  # noqa: F401
from werkzeug.serving import make_server

from gamma_detect.server import cli, scan
from stub_detector import image_bytes


def wait_ready(base: str, seconds: float = 40) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


def test_serve_embedded_one_command_and_persistence():
    data_dir = tempfile.mkdtemp(prefix="gamma-serve-")
    port = server_support.free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(GAMMA_DATA_DIR=data_dir, GAMMA_DETECTOR=server_support.STUB, GAMMA_LOG_LEVEL="WARNING")
    base = f"http://127.0.0.1:{port}"

    def start():
        return subprocess.Popen([sys.executable, "-m", "gamma_detect.cli", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    process = start()
    try:
        wait_ready(base)
        accepted = requests.post(f"{base}/v1/analyze", files={"image": ("a.png", image_bytes(seed=1))}, timeout=10)
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        assert requests.get(f"{base}/jobs/{job_id}", params={"wait": 15}, timeout=20).json()["status"] == "finished"
        sha = image_bytes(seed=1)
        stored = requests.post(f"{base}/v1/feedback", timeout=10, json={
            "sha256": hashlib.sha256(sha).hexdigest(),
            "result": {"verdict": "ai"}, "label": "real"})
        assert stored.status_code == 201
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
        process = start()                         # restart: jobs and feedback survive (append-only file)
        wait_ready(base)
        assert requests.get(f"{base}/jobs/{job_id}", timeout=10).json()["status"] == "finished"
        again = requests.post(f"{base}/v1/analyze", files={"image": ("b.png", image_bytes(seed=1))}, timeout=10)
        assert again.status_code == 200 and again.json()["cached"] is True
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    # `gamma feedback export` against the same (now stopped) embedded Redis's data folder
    out = os.path.join(data_dir, "feedback.jsonl")
    subprocess.run([sys.executable, "-m", "gamma_detect.cli", "feedback", "export", "--out", out], env=env,
                   check=True, timeout=60, capture_output=True)
    lines = open(out).read().splitlines()
    shutil.rmtree(data_dir, ignore_errors=True)
    assert len(lines) == 1 and json.loads(lines[0])["label"] == "real"


def test_scan_client_progress_resume(image_server, tmp_path):
    backend = server_support.backend_with(fetch_test_allow=image_server.allow, fetch_retries=0)
    posts = []
    backend.app.before_request(lambda: posts.append(1) if backend_request_is_scan() else None)
    http = make_server("127.0.0.1", 0, backend.app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        backend.start_worker()
        pages = []
        for p in range(3):
            urls = [image_server.add(f"/p{p}/{i}.png", image_bytes(seed=500 + p * 10 + i)) for i in range(2)]
            pages.append({"page_url": f"https://site.example/page{p}", "image_urls": urls})
        crawl = tmp_path / "crawl.jsonl"
        crawl.write_text("".join(json.dumps(p) + "\n" for p in pages))
        out = tmp_path / "results.jsonl"
        server = f"http://127.0.0.1:{http.port}"
        stats = scan.run(str(crawl), str(out), server, concurrency=2, progress=False)
        assert stats["scanned"] == 3 and stats["failed"] == 0 and stats["images"] == 6 and len(posts) == 3
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(r["page_url"] for r in records) == [p["page_url"] for p in pages]
        assert all(i["status"] == "finished" for r in records for i in r["images"])
        # Interrupted run: one page written, one cut mid-line. A rerun does only what is missing.
        out.write_text(json.dumps(records[0]) + "\n" + json.dumps(records[1])[:40])
        posts.clear()
        assert cli.scan_main([str(crawl), "--out", str(out), "--server", server, "--no-progress"]) == 0
        assert len(posts) == 2
        assert len(out.read_text().splitlines()) == 3
    finally:
        http.shutdown()
        backend.stop()
        server_support.delete_keys()


def backend_request_is_scan() -> bool:
    from flask import request

    return request.path == "/v1/scan" and request.method == "POST"


def test_host_limiter_paces_each_host():
    limiter = scan.HostLimiter(rate=5, concurrency=10)
    start = time.monotonic()
    for _ in range(6):
        limiter.acquire("a.example")
        limiter.release("a.example")
    assert time.monotonic() - start >= 0.95
    start = time.monotonic()
    for host in ("b", "c", "d"):
        limiter.acquire(host)
    assert time.monotonic() - start < 0.1


def test_server_never_imports_torch_or_train():
    code = ("import sys\n"
            "from gamma_detect.server import app, api, worker, jobs, cli, scan, fetch, decode\n"
            "assert 'torch' not in sys.modules and 'gamma_detect.train' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_scan_client_waits_out_429_and_503_with_retry_after():
    import http.server
    import threading

    answers = [(429, "0"), (503, "0"), (200, None)]
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(self.path)
            status, retry_after = answers[min(len(seen), len(answers)) - 1]
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = LoopbackServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = scan.Client(f"http://127.0.0.1:{server.server_address[1]}", None, timeout=5)
        assert client.request("POST", "/v1/scan", json={}).status_code == 200 and len(seen) == 3
        answers[:] = [(429, "0")]
        seen.clear()
        client = scan.Client(f"http://127.0.0.1:{server.server_address[1]}", None, timeout=5, max_attempts=2)
        assert client.request("POST", "/v1/scan", json={}).status_code == 429 and len(seen) == 2  # gives up
    finally:
        server.shutdown()
