"""`python3 bench/loadtest.py`: the service under load, beside the same decode + Detector pipeline in one process.

Phases, in one run, on web-typical images (JPEG and WebP, 300 to 2000 px, photo-like content):

1. in-process: decode + ``Detector.predict`` in batches of GAMMA_BATCH_SIZE, no HTTP, no queue;
2. service, uncached: every image uploaded once (all at once), each job followed to its end by
   long-polling; throughput = images / wall time;
3. service, cached, at a fixed arrival rate (open loop; latency counted from each request's
   scheduled time, so a stalled server cannot hide its queueing): the extension's request, an
   image URL already analysed (`url`), and a re-upload of the same bytes (`upload`);
4. saturation: the cached URL request at rising rates until p99 passes 50 ms or errors appear.

Without --server it starts the service itself, on this machine: with REDIS_URL set, `gamma serve`
(gunicorn) plus one `gamma worker`; without, `gamma serve` (embedded Redis, in-process worker).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence
from urllib.parse import urlsplit

import numpy as np

from gamma_detect.server.config import Settings


# --------------------------------------------------------------------------- images
def web_images(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """Photo-like images: smooth colour fields, shapes, texture and noise, saved as JPEG or WebP."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(seed)
    aspects = [(4, 3), (3, 2), (1, 1), (16, 9), (3, 4), (2, 3)]
    out = []
    for i in range(count):
        long_side = int(rng.integers(300, 2001))
        a, b = aspects[i % len(aspects)]
        width, height = (long_side, max(64, long_side * b // a)) if a >= b else (max(64, long_side * a // b), long_side)
        small = rng.integers(0, 256, size=(max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
        base = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        for _ in range(int(rng.integers(3, 9))):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            radius = int(rng.integers(10, max(11, long_side // 4)))
            colour = [int(c) for c in rng.integers(0, 256, 3)]
            cv2.circle(base, centre, radius, colour, -1, lineType=cv2.LINE_AA)
        base += rng.normal(0, 6, size=base.shape).astype(np.int16)
        pixels = np.clip(base, 0, 255).astype(np.uint8)
        fmt = "JPEG" if i % 2 == 0 else "WEBP"
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, fmt, quality=int(rng.integers(75, 93)))
        out.append((fmt, buffer.getvalue()))
    return out


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    array = np.asarray(values) * 1000
    return {k: round(float(np.percentile(array, q)), 2) for k, q in (("p50", 50), ("p95", 95), ("p99", 99))}


# --------------------------------------------------------------------------- CPU use
class Usage:
    """What one phase cost the machine: the load average at its end, and the CPU this process (the load
    generator, or the in-process pipeline) and the service's processes used over it, as shares of all cores.
    On a 2-core machine the generator competes with the service, so every figure is printed beside these."""

    def __init__(self, service_pids: Sequence[int] = ()):
        self.pids = list(service_pids)
        self.start = time.perf_counter()
        self.own = _own_cpu()
        self.service = _tree_cpu(self.pids)

    def report(self) -> dict:
        wall = time.perf_counter() - self.start
        cores = os.cpu_count() or 1
        out = {"load_average": [round(v, 2) for v in os.getloadavg()],
               "generator_cpu_share": round((_own_cpu() - self.own) / (wall * cores), 3)}
        if self.pids:
            out["service_cpu_share"] = round((_tree_cpu(self.pids) - self.service) / (wall * cores), 3)
        return out


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _tree_cpu(pids: list[int]) -> float:
    """User + system seconds of these processes and their children (gunicorn's workers), while they live."""
    if not pids:
        return 0.0
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def flop_share(views_per_s: float, detector, threads: int) -> float | None:
    """Achieved FLOP/s of the graph over the estimated FP32 peak of the cores it ran on (as `gamma bench`)."""
    from gamma_detect.export.bench import cpu_peak_gflops

    flops = detector.manifest.raw["model"].get("flops_per_image")
    peak, _ = cpu_peak_gflops(threads)
    return round(views_per_s * flops / (peak * 1e9), 3) if flops and peak else None


# --------------------------------------------------------------------------- phase 1
_DETECTOR = None


def in_process(images: list[tuple[str, bytes]], settings: Settings) -> dict:
    from gamma_detect.server.decode import decode
    from gamma_detect.server.jobs import load_model, model_record

    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = load_model(settings)
        warm = [decode(data, max_pixels=settings.max_pixels)[0] for _, data in images[:2]]
        _DETECTOR.predict(warm)
    detector = _DETECTOR
    min_side = model_record(detector)["min_side"]
    latencies = []

    def load(data: bytes):
        # As the worker decodes: a JPEG at the DCT scale nearest above the policy's working size.
        rgb, info = decode(data, max_pixels=settings.max_pixels, min_side=min_side, work=detector.policy.working_size)
        return rgb, (info.height, info.width)

    # As the worker does it: the batch decoded in threads, then one predict call.
    views = 0
    usage = Usage()
    with ThreadPoolExecutor(max_workers=max(2, min(8, settings.batch_size))) as pool:
        start = time.perf_counter()
        for i in range(0, len(images), settings.batch_size):
            t0 = time.perf_counter()
            batch = list(pool.map(load, [data for _, data in images[i:i + settings.batch_size]]))
            views += sum(p.views for p in detector.predict([rgb for rgb, _ in batch], native=[n for _, n in batch]))
            latencies += [time.perf_counter() - t0] * len(batch)
        wall = time.perf_counter() - start
    threads = settings.threads or os.cpu_count() or 1
    return {"phase": "in-process decode + Detector.predict", "requests": len(images), "errors": 0,
            "rate": round(len(images) / wall, 2), "wall_s": round(wall, 2), **percentiles(latencies),
            "views_per_image": round(views / len(images), 2), "views_per_s": round(views / wall, 1),
            "flop_peak_share": flop_share(views / wall, detector, threads), **usage.report(),
            "model": dict(detector.model_info)}


# --------------------------------------------------------------------------- HTTP plumbing
class Http:
    """One keep-alive connection per thread."""

    def __init__(self, base: str, key: str | None = None):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.local = threading.local()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 60) -> tuple[int, bytes]:
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                response = conn.getresponse()
                self.local.headers = response.headers   # the last response's, for callers that check them
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def upload(self, data: bytes, name: str) -> tuple[int, bytes]:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/v1/analyze", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def analyze_url(self, url: str) -> tuple[int, bytes]:
        return self.request("POST", "/v1/analyze", json.dumps({"url": url}).encode(), {"Content-Type": "application/json"})

    def follow(self, status: int, body: bytes, deadline: float) -> dict:
        """Long-poll a 202 to its end; return the final job view (or the 200 result)."""
        data = json.loads(body)
        if status == 200:
            return {"status": "finished", "result": data}
        if status != 202:
            return {"status": "error", "error": data}
        while time.monotonic() < deadline:
            status, body = self.request("GET", f"/jobs/{data['job_id']}?wait=30", timeout=40)
            view = json.loads(body)
            if status != 200 or view["status"] in ("finished", "failed", "canceled"):
                return view
        return {"status": "timeout"}


# --------------------------------------------------------------------------- phase 2
def uncached(client: Http, images: list[tuple[str, bytes]], concurrency: int, pids: Sequence[int] = ()) -> dict:
    latencies, errors = [], []

    def one(item):
        index, (fmt, data) = item
        t0 = time.perf_counter()
        status, body = client.upload(data, f"img{index}.{fmt.lower()}")
        view = client.follow(status, body, time.monotonic() + 300)
        if view.get("status") != "finished":
            errors.append(view)
        latencies.append(time.perf_counter() - t0)
        return view

    usage = Usage(pids)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        views = list(pool.map(one, enumerate(images)))
    wall = time.perf_counter() - start
    cached = sum(1 for v in views if v.get("result", {}).get("cached"))
    return {"phase": "service uncached (upload, long-poll)", "requests": len(images), "errors": len(errors),
            "rate": round(len(images) / wall, 2), "wall_s": round(wall, 2), **percentiles(latencies),
            "cached_answers": cached, **usage.report(), "error_samples": errors[:3]}


# --------------------------------------------------------------------------- phase 3/4
def fixed_rate(send, rate: float, duration: float, threads: int = 48, pids: Sequence[int] = ()) -> dict:
    """Open loop: request i is due at t0 + i/rate; latency counts from that time."""
    total = int(rate * duration)
    due: queue.Queue = queue.Queue()
    latencies, errors = [], []
    lock = threading.Lock()

    def worker():
        while True:
            item = due.get()
            if item is None:
                return
            index, scheduled = item
            try:
                status = send(index)
                ok = status == 200
            except Exception:
                ok = False
            elapsed = time.perf_counter() - scheduled
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors.append(index)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    usage = Usage(pids)
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        due.put((i, scheduled))
    for _ in pool:
        due.put(None)
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    return {"requests": total, "errors": len(errors), "offered_rate": rate, "rate": round(total / wall, 1),
            **percentiles(latencies), **usage.report()}


class ImageHost:
    """Serves the benchmark images over loopback HTTP (for the URL requests)."""

    def __init__(self, images: list[tuple[str, bytes]]):
        import http.server

        # Served by path (a query string is ignored); callers may add files while it runs.
        self.files = files = {f"/img{i}.{fmt.lower()}": data for i, (fmt, data) in enumerate(images)}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                data = files.get(self.path.split("?", 1)[0])
                self.send_response(200 if data else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.urls = [f"http://127.0.0.1:{self.server.server_address[1]}{path}" for path in files]

    @property
    def allow(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


# --------------------------------------------------------------------------- the service
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(env_extra: dict, logs: tuple = (subprocess.DEVNULL, subprocess.DEVNULL)
                  ) -> tuple[str, list[subprocess.Popen], str]:
    """The service's processes; ``logs``: where the API's and the worker's output go (files, or nowhere)."""
    port = _free_port()
    env = {**os.environ, **env_extra}
    command = [sys.executable, "-m", "gamma_detect.cli"]
    processes = [subprocess.Popen(command + ["serve", "--port", str(port)], env=env,
                                  stdout=logs[0], stderr=subprocess.STDOUT)]
    mode = "embedded Redis + worker processes (werkzeug threaded)"
    if env.get("REDIS_URL"):
        processes.append(subprocess.Popen(command + ["worker"], env=env, stdout=logs[1], stderr=subprocess.STDOUT))
        mode = (f"gunicorn ({env.get('GAMMA_WEB_CONCURRENCY', '2')} processes) + `gamma worker` "
                f"({env.get('GAMMA_WORKERS', 'one per core')} worker processes), Redis at REDIS_URL")
    return f"http://127.0.0.1:{port}", processes, mode


def wait_ready(client: Http, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if client.request("GET", "/readyz", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the service did not become ready")


def run(args) -> dict:
    settings = Settings.from_env()
    images = web_images(args.images, args.seed)
    sizes = [len(d) for _, d in images]
    from gamma_detect.export.bench import cpu_model, simd_flags

    simd = simd_flags()
    report = {"command": " ".join(["python3", "bench/loadtest.py", *sys.argv[1:]]), "date_utc": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "simd": simd,
        "platform": sys.platform, "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}, "images": {
        "count": len(images), "formats": "JPEG+WebP", "bytes_median": int(statistics.median(sizes)),
        "long_side_px": "300-2000"}, "batch_size": settings.batch_size, "phases": []}
    print(f"machine: {report['machine']['cpu']}, {os.cpu_count()} logical CPUs ({', '.join(simd)}); "
          f"load average at start {report['machine']['load_average_at_start']}", flush=True)
    if not args.skip_baseline:
        report["phases"].append(in_process(images, settings))
        _print_row(report["phases"][-1])
    host = ImageHost(images)
    processes = []
    if args.server:
        base, mode = args.server, "remote"
    else:
        extra = {"GAMMA_RATE_LIMIT": "0", "GAMMA_FETCH_TEST_ALLOW": host.allow, "GAMMA_LOG_LEVEL": "WARNING",
                 "GAMMA_REDIS_PREFIX": f"gamma-bench-{uuid.uuid4().hex[:8]}",
                 "RQ_KEY_PREFIX": "", "GAMMA_DATA_DIR": tempfile.mkdtemp(prefix="gamma-bench-")}
        extra["RQ_KEY_PREFIX"] = extra["GAMMA_REDIS_PREFIX"] + ":rq"
        base, processes, mode = start_service(extra)
    report["service"] = {"url": base, "mode": mode}
    # The service's CPU is counted over the processes started here and those the caller names (its redis-server).
    pids = [p.pid for p in processes] + [int(v) for v in os.environ.get("LOADTEST_SERVICE_PIDS", "").split(",") if v]
    client = Http(base, args.key or os.environ.get("GAMMA_API_KEY"))
    try:
        wait_ready(client)
        phase = uncached(client, images, args.concurrency, pids)
        report["phases"].append(phase)
        _print_row(phase)
        if not args.skip_baseline:
            # Again after the service phase (the machine's load drifts): the ratio is taken against the
            # faster of the two in-process runs, the conservative choice.
            after = in_process(images, settings)
            after["phase"] += " (again)"
            report["phases"].append(after)
            _print_row(after)
            baseline = max(report["phases"][0]["rate"], after["rate"])
            ratio = phase["rate"] / baseline
            report["uncached_ratio"] = round(ratio, 3)
            print(f"  service / faster in-process run: {ratio:.2f} (target >= 0.70)")
        urls = host.urls if not args.server else []
        if urls:   # warm the URL -> sha256 map (the bytes are already cached)
            for url in urls:
                client.follow(*client.analyze_url(url), time.monotonic() + 120)
            result = fixed_rate(lambda i: client.analyze_url(urls[i % len(urls)])[0], args.rate, args.duration,
                                pids=pids)
            report["phases"].append({"phase": f"cached URL @ {args.rate:g}/s", **result})
            _print_row(report["phases"][-1])
        result = fixed_rate(lambda i: client.upload(images[i % len(images)][1], "again.jpg")[0],
                            args.rate, args.duration, pids=pids)
        report["phases"].append({"phase": f"cached upload @ {args.rate:g}/s", **result})
        _print_row(report["phases"][-1])
        # The same cached uploads while the workers hold every core scoring new images (what a service sees at
        # work): the workers run below the API's CPU priority (GAMMA_WORKER_NICE).
        fresh = web_images(args.images, args.seed + 1)
        scoring = threading.Thread(target=lambda: report.setdefault("busy_scoring", uncached(
            client, fresh, args.concurrency, pids)), daemon=True)
        scoring.start()
        time.sleep(1.0)   # let the first batches start
        result = fixed_rate(lambda i: client.upload(images[i % len(images)][1], "again.jpg")[0],
                            args.rate, args.duration, pids=pids)
        busy = scoring.is_alive()   # the scoring outlasted the cached phase: the workers were busy throughout
        scoring.join()
        report["phases"].append({"phase": f"cached upload @ {args.rate:g}/s while the workers score "
                                 f"{len(fresh)} new images", "workers_busy_throughout": busy, **result})
        _print_row(report["phases"][-1])
        if urls and args.saturation:
            best = None
            for rate in (300, 450, 600, 800, 1000, 1300, 1600):
                result = fixed_rate(lambda i: client.analyze_url(urls[i % len(urls)])[0], rate, args.step, pids=pids)
                ok = result["errors"] == 0 and result["p99"] is not None and result["p99"] <= 50 \
                    and result["rate"] >= 0.95 * rate
                print(f"  saturation step {rate}/s: p50 {result['p50']} ms, p99 {result['p99']} ms, "
                      f"errors {result['errors']}, achieved {result['rate']}/s{'' if ok else '  <- over'}")
                if not ok:
                    break
                best = rate
            report["saturation_rate"] = best
            print(f"  cached URL saturation: {best}/s sustained with p99 <= 50 ms and no errors")
    finally:
        for process in processes:
            process.send_signal(2)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        host.server.shutdown()
        if processes:
            import shutil

            shutil.rmtree(extra["GAMMA_DATA_DIR"], ignore_errors=True)
        if processes and os.environ.get("REDIS_URL"):   # leave nothing of this run in a shared Redis
            from gamma_detect.server.redisconn import connect

            connection = connect(os.environ["REDIS_URL"])
            keys = list(connection.scan_iter(match=extra["GAMMA_REDIS_PREFIX"] + ":*", count=1000))
            for i in range(0, len(keys), 500):
                connection.delete(*keys[i:i + 500])
    return report


def _print_row(phase: dict) -> None:
    extra = f"  {phase['views_per_image']} views/image, {phase['views_per_s']} views/s, " \
            f"{_pct(phase['flop_peak_share'])} of FP32 peak" if "views_per_image" in phase else ""
    service = f", service CPU {_pct(phase['service_cpu_share'])}" if "service_cpu_share" in phase else ""
    print(f"{phase['phase']:<42} {phase['requests']:>6} req  {phase['errors']:>3} err  {phase['rate']:>8} /s  "
          f"p50 {phase['p50']} ms  p95 {phase['p95']} ms  p99 {phase['p99']} ms{extra}\n"
          f"{'':<42} load average {phase['load_average'][0]}, generator CPU {_pct(phase['generator_cpu_share'])}"
          f"{service} (of {os.cpu_count()} cores)", flush=True)


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.0f}%"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 bench/loadtest.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=None, help="a running service (default: start one here)")
    parser.add_argument("--key", default=None, help="API key (default: GAMMA_API_KEY)")
    parser.add_argument("--images", type=int, default=48, help="distinct images for the uncached phase")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in the uncached phase")
    parser.add_argument("--rate", type=float, default=200, help="arrival rate of the cached phases, requests/s")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each cached phase")
    parser.add_argument("--saturation", action="store_true", help="also find the cached saturation rate")
    parser.add_argument("--step", type=float, default=4, help="seconds per saturation step")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the report as JSON")
    args = parser.parse_args(argv)
    report = run(args)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=2)
    failures = sum(p["errors"] for p in report["phases"])
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
