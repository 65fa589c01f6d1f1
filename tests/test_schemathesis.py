"""The API against its own OpenAPI document, by schemathesis (a tool no one here wrote).

A live deployment in its production shape: `gamma serve` (gunicorn) and `gamma worker` (one worker process, the stub
detector) on the tests' Redis, on loopback. schemathesis reads /v1/openapi.json from it and runs every phase
(examples, coverage, fuzzing, stateful: analyze -> poll -> cancel through the document's links) with every check,
seeded and deterministic, a bounded number of examples per operation. tests/schemathesis_hooks.py sends every URL
in a generated body to a loopback image server or to one the URL guard refuses without a lookup.

Two checks are left out, because by their nature they cannot hold here:
- positive_data_acceptance: a schema-valid upload is any string of bytes, and random bytes are not an image (the
  API rightly answers 415/422); JSON Schema cannot say "a decodable PNG".
- use_after_free: DELETE /jobs/<id> cancels a job, it does not delete it; the canceled job stays readable
  (GET answers 200 with status `canceled`) until it expires, as the document says.
"""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack

import pytest
import requests
import server_support
from server_support import ImageServer

from schemathesis_hooks import REFUSED, loopback, mapped, reaches_a_host
from stub_detector import image_bytes

pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra: pip install -e '.[dev]'")

SEED = 20
MAX_EXAMPLES = 50
EXCLUDED = {"positive_data_acceptance": "random schema-valid bytes are not an image",
            "use_after_free": "DELETE /jobs/<id> is a cancel: the job stays readable"}


def _start(args: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gamma_detect.cli", *args], env=env, stdout=log, stderr=log,
                            start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def live(tmp_path):
    """A base URL of gamma serve + gamma worker on loopback, and the image server its URL jobs may fetch from."""
    server_support.delete_keys()
    images = ImageServer()
    for index in range(2):
        images.add(f"/img/{index}.png", image_bytes(96 + 16 * index, 80, seed=700 + index))
    port = server_support.free_port()
    env = {**os.environ, "REDIS_URL": server_support.redis_url(), "GAMMA_DETECTOR": server_support.STUB,
           "GAMMA_DATA_DIR": str(tmp_path), "GAMMA_FETCH_TEST_ALLOW": images.allow, "GAMMA_FETCH_RETRIES": "0",
           "GAMMA_RATE_LIMIT": "0", "GAMMA_WORKERS": "1", "GAMMA_WEB_CONCURRENCY": "1", "GAMMA_WEB_THREADS": "8",
           "GAMMA_HEARTBEAT": "1", "GAMMA_HEARTBEAT_GRACE": "2", "GAMMA_BATCH_WAIT_MS": "20",
           "GAMMA_LOG_LEVEL": "WARNING"}
    base = f"http://127.0.0.1:{port}"
    with ExitStack() as stack, open(tmp_path / "server.log", "wb") as log:
        stack.callback(server_support.delete_keys)
        stack.callback(images.close)
        for args in (["worker"], ["serve", "--host", "127.0.0.1", "--port", str(port)]):
            stack.callback(_stop, _start(args, env, log))
        server_support.eventually(lambda: _ready(base), 60, 0.2, what="gamma serve and its worker to be ready")
        yield base, images, tmp_path
    print((tmp_path / "server.log").read_text(errors="replace")[-4000:])


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_hook_keeps_every_generated_url_on_this_machine():
    images = "http://127.0.0.1:9"
    for url in ("http://example.com/a.png", " HTTPS://8.8.8.8:443/x ", "http://[2001:4860::8888]/", "http://a\tb.c/",
                "http://user:pw@host/", "http://xn--e1afmkfd.xn--p1ai/", "https://é.example/"):
        assert reaches_a_host(url)
        assert loopback(url, images) in (REFUSED, *(images + p for p in ("/img/0.png", "/img/1.png", "/missing.png")))
    for value in ("", "not a url", "ftp://example.com/", "http:///path", "http://host:99999/", "http://[::1/",
                  "/relative", "mailto:a@b.c", "data:image/png;base64,AA=="):
        assert not reaches_a_host(value) and mapped(value, images) == value
    body = {"url": "http://example.com/a.png", "image_urls": ["https://b.example/", 3], "note": "http://c.example/",
            "result": {"deep": ["http://d.example/"]}}
    out = mapped(body, images)
    assert not any(reaches_a_host(v) and not v.startswith((images, REFUSED))
                   for v in (out["url"], out["image_urls"][0], out["note"], out["result"]["deep"][0]))
    assert out["image_urls"][1] == 3 and mapped(body, images) == out   # deterministic
    # every target the hook picks is reached: both images, the 404 and the refused literal
    assert len({loopback(f"http://h{i}.example/", images) for i in range(40)}) == 4


def test_the_api_passes_schemathesis_every_phase_every_check(live):
    base, images, tmp_path = live
    report = tmp_path / "schemathesis.json"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "GAMMA_ST_IMAGES": f"http://{images.allow}"}
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/v1/openapi.json",
               "--phases", "examples,coverage,fuzzing,stateful",
               "--checks", "all", "--exclude-checks", ",".join(EXCLUDED), "--seed", str(SEED),
               "--generation-deterministic", "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
               "--request-timeout", "40", "--no-color",
               "--report", "json", "--report-json-path", str(report)]
    started = time.monotonic()
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    print(run.stdout[-6000:], run.stderr[-2000:], f"schemathesis ran {elapsed:.1f} s; report {report}", sep="\n")
    assert run.returncode == 0, run.stdout[-12000:]
    # No generated URL left this machine: what the image server saw came from the worker's fetches only.
    assert all(seen["path"] in ("/img/0.png", "/img/1.png", "/missing.png") for seen in images.seen)
    summary = json.loads(report.read_text())
    paths = requests.get(f"{base}/v1/openapi.json", timeout=10).json()["paths"]
    operations = {f"{method.upper()} {path}" for path, methods in paths.items() for method in methods}
    # Every operation but the one schemathesis loaded the document from (it leaves that one out).
    assert summary["complete"] and set(summary["valid_rates"]) == operations - {"GET /v1/openapi.json"}
    assert summary["operations"]["tested"] == summary["operations"]["total"] == len(operations) - 1
    # The document carries no examples (that phase has nothing to run); every other phase ran and passed.
    assert {phase: result["status"] for phase, result in summary["phases"].items()} == \
           {"examples": "skip", "coverage": "success", "fuzzing": "success", "stateful": "success"}
    assert summary["failures"] == [] and summary["errors"] == [] and summary["test_cases"]["generated"] > 500
    print(f"schemathesis: {summary['test_cases']['generated']} test cases over {len(operations) - 1} operations")
