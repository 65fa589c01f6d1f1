"""How long `gamma serve` (embedded Redis, the bundled default model) takes to stop on SIGTERM after a job.

    python3 bench/serve_stop.py --tries 20 [--json bench/serve-stop.json]

Each try starts a fresh `gamma serve` on a free loopback port with its own data folder, uploads one image
(its result read in half the tries, as issue 20 measured), waits 0 to 4 s, sends SIGTERM and times the exit. Before
the fix of issue 20, 9 of 29 unread tries hung until the supervisor killed the worker 60 s later.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from gamma_detect.export.bench import cpu_model, simd_flags

REPO = Path(__file__).resolve().parent.parent
IMAGE = REPO / "tests" / "assets" / "photos" / "street.jpg"
BOUND_S = 60.0   # longer than the supervisor's own 60 s: a hung worker shows as a try over 60 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_try(index: int, read_result: bool, idle_s: float) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="gamma-stop-") as data:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GAMMA_DETECTOR")}
        env.update(GAMMA_DATA_DIR=data, GAMMA_LOG_LEVEL="WARNING")
        serve = subprocess.Popen([sys.executable, "-m", "gamma_detect.cli", "serve", "--port", str(port)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            else:
                raise RuntimeError("gamma serve did not become ready within 120 s")
            with IMAGE.open("rb") as f:
                job = requests.post(f"{base}/v1/analyze", files={"image": ("street.jpg", f, "image/jpeg")},
                                    timeout=30).json()["job_id"]
            if read_result:
                requests.get(f"{base}/jobs/{job}?wait=30", timeout=40).raise_for_status()
            time.sleep(idle_s)
            start = time.monotonic()
            serve.send_signal(signal.SIGTERM)
            try:
                code = serve.wait(BOUND_S)
            except subprocess.TimeoutExpired:
                code = None
            seconds = time.monotonic() - start
            killed = b"killing it" in (serve.stderr.read() if code is not None else b"")
            return {"try": index, "read_result": read_result, "idle_s": idle_s, "stop_s": round(seconds, 3),
                    "exit_code": code, "worker_killed": killed}
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait(10)
            serve.stderr.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    tries = []
    for i in range(args.tries):
        tries.append(one_try(i, read_result=bool(i % 2), idle_s=(0.0, 0.5, 2.0, 4.0)[i % 4]))
        print(json.dumps(tries[-1]), flush=True)
    stops = [t["stop_s"] for t in tries]
    report = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]), "cpu": cpu_model(),
              "simd": simd_flags(), "python": platform.python_version(), "tries": tries,
              "summary": {"tries": len(tries), "median_s": statistics.median(stops), "max_s": max(stops),
                          "over_10_s": sum(s > 10 for s in stops), "not_warm": sum(t["exit_code"] != 0 or
                                                                                     t["worker_killed"] for t in tries)}}
    print(json.dumps(report["summary"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 1 if report["summary"]["over_10_s"] or report["summary"]["not_warm"] else 0


if __name__ == "__main__":
    sys.exit(main())
