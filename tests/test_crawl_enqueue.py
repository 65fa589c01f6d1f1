"""`gamma scan --enqueue`: one RQ job per WARC file on the crawl queue, two `gamma worker --crawl` processes, one
stopped mid-file (SIGTERM) or killed outright (SIGKILL): every file scanned once, the stopped one resumed from its
checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import server_support  # sets RQ_KEY_PREFIX: before RQ is imported
from rq.job import Job  # noqa: E402
from rq.queue import Queue  # noqa: E402
from rq.serializers import JSONSerializer  # noqa: E402
from crawl_support import WarcBuilder
from gamma_detect.server import cli, jobs
from gamma_detect.server.config import Settings
from gamma_detect.server.redisconn import connect
from server_support import STOP_BOUND, alive, children, eventually
from stub_detector import image_bytes

PAGES = 8   # about half a second each (the stub waits 150 ms per image): time to stop one mid-file


def make_crawl(folder) -> list[str]:
    folder.mkdir()
    paths = []
    for f in range(3):
        path = str(folder / f"part{f}.warc.gz")
        with WarcBuilder(path) as w:
            for p in range(PAGES):
                names = [f"/{f}/{p}/{i}.png" for i in range(3)]
                w.response(f"http://site.test/{f}/{p}.html", "".join(f'<img src="{n}">' for n in names).encode())
                for i, name in enumerate(names):
                    w.response(f"http://site.test{name}", image_bytes(seed=1000 * f + 10 * p + i), "image/png")
        paths.append(path)
    return paths


@pytest.fixture
def crawl_queue():
    connection = connect(server_support.redis_url())
    queue = Queue(jobs.CRAWL_QUEUE, connection=connection, serializer=JSONSerializer)
    queue.empty()
    yield connection
    queue.empty()


def worker_env(digest: str, **extra: str) -> dict:
    """A crawl worker's environment: the stub detector under a model digest of the test's own, so no other test's
    results are in the service's cache for it."""
    return {**os.environ, "REDIS_URL": server_support.redis_url(), "GAMMA_DETECTOR": server_support.STUB,
            "GAMMA_STUB_DIGEST": digest, "GAMMA_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]), **extra}


def worker(name: str, env: dict, log, *options: str) -> subprocess.Popen:
    # The log to a file: RQ logs every job, and a full pipe nobody reads would block the worker.
    return subprocess.Popen([sys.executable, "-m", "gamma_detect.cli", "worker", "--crawl", "--name", name, *options],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_enqueue_two_workers_one_stopped_mid_file(tmp_path, monkeypatch, crawl_queue, capsys, stop):
    paths = make_crawl(tmp_path / "crawl")
    results = tmp_path / "results"
    monkeypatch.setenv("REDIS_URL", server_support.redis_url())
    assert cli.scan_main([str(tmp_path / "crawl"), "--enqueue", str(results), "--json", "--no-progress"]) == 0
    entries = json.loads(capsys.readouterr().out)["jobs"]
    assert [e["state"] for e in entries] == ["queued"] * 3 and [e["warc_file"] for e in entries] == paths
    # A killed worker's job counts as abandoned 1 + 2 s after its last heartbeat (the default: 5 + 15 s).
    env = worker_env(f"stub-{stop.name.lower()}", GAMMA_STUB_DELAY_MS="150", GAMMA_HEARTBEAT="1",
                     GAMMA_HEARTBEAT_GRACE="2")
    workers = {name: worker(name, env, tmp_path / f"{name}.log") for name in ("crawl-a", "crawl-b")}
    try:
        def started_with_checkpoint():
            for entry in entries:
                job = Job.fetch(entry["job_id"], connection=crawl_queue, serializer=JSONSerializer)
                if job.get_status() == "started" and 0 < job.meta.get("checkpoint", {}).get("pages", 0) <= PAGES - 3:
                    return job
            return None

        job = eventually(started_with_checkpoint, 60, what="a job part way through its file")
        stopped = workers[job.worker_name]
        horses = children(stopped.pid)   # the work horse scanning the file (RQ forks one per job)
        assert horses
        stopped.send_signal(stop)
        stopped.wait(STOP_BOUND)   # stops at once, not after the file
        # No horse scans on beside the job's next attempt: its worker kills it (SIGTERM), or it ends itself once
        # its worker is gone (SIGKILL).
        eventually(lambda: not any(map(alive, horses)), STOP_BOUND, what="the stopped worker's horse to end")

        def all_finished():
            return all(Job.fetch(e["job_id"], connection=crawl_queue, serializer=JSONSerializer).get_status()
                       == "finished" for e in entries)

        eventually(all_finished, 90, what="every file's job to finish")
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers.values():
            process.wait(STOP_BOUND)
    for entry in entries:
        lines = [json.loads(line) for line in open(entry["out"], encoding="utf-8")]
        f = os.path.basename(entry["warc_file"])[4]
        assert [r["page_url"] for r in lines] == [f"http://site.test/{f}/{p}.html" for p in range(PAGES)]
        assert all(i["status"] == "scored" for r in lines for i in r["images"])
        assert not os.path.exists(entry["out"] + ".partial")
    resumed = Job.fetch(job.id, connection=crawl_queue, serializer=JSONSerializer)
    assert resumed.worker_name != job.worker_name   # the survivor took it over
    assert 0 < resumed.return_value()["pages"] < PAGES   # the next attempt scanned only what the first had not written
    # Enqueued again: every file is finished, nothing queued.
    time.sleep(0.01)
    assert cli.scan_main([str(tmp_path / "crawl"), "--enqueue", str(results), "--json", "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out)["jobs"]
    assert [e["state"] for e in again] == ["finished"] * 3
    assert Queue(jobs.CRAWL_QUEUE, connection=crawl_queue, serializer=JSONSerializer).count == 0


def test_an_image_in_two_files_is_scored_once(tmp_path, monkeypatch, crawl_queue, capsys):
    """The jobs, one per WARC file, share the service's result cache (sha256 and model digest): a logo archived
    in both files is inferred once, the second file answered from the cache, its heatmap stored for the API."""
    folder = tmp_path / "crawl"
    folder.mkdir()
    for f in range(2):
        with WarcBuilder(str(folder / f"part{f}.warc.gz")) as w:
            w.response(f"http://site.test/{f}.html", f'<img src="/logo.png"><img src="/own{f}.png">'.encode())
            w.response("http://site.test/logo.png", image_bytes(seed=7), "image/png")
            w.response(f"http://site.test/own{f}.png", image_bytes(seed=8 + f), "image/png")
    monkeypatch.setenv("REDIS_URL", server_support.redis_url())
    assert cli.scan_main([str(folder), "--enqueue", str(tmp_path / "results"), "--json", "--no-progress"]) == 0
    entries = json.loads(capsys.readouterr().out)["jobs"]
    # One worker: the files' jobs run one after the other, in order.
    burst = worker("crawl-dedupe", worker_env("stub-dedupe"), tmp_path / "worker.log", "--burst")
    try:
        assert burst.wait(60) == 0
    finally:
        burst.kill()
    images = [json.loads(open(e["out"], encoding="utf-8").readline())["images"] for e in entries]
    (logo0, own0), (logo1, own1) = images
    assert logo0["sha256"] == logo1["sha256"] and logo0["status"] == logo1["status"] == "scored"
    assert [entry["result"].get("cached") for entry in (logo0, own0, logo1, own1)] == [False, False, True, False]
    assert {**logo1["result"], "cached": False} == logo0["result"]   # the first file's inference, timings and all
    settings = Settings.from_env()
    assert crawl_queue.exists(settings.key("heatmap", "stub-dedupe", logo0["sha256"]))


def test_enqueue_needs_redis(tmp_path, monkeypatch, capsys):
    make_crawl(tmp_path / "crawl")
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert cli.scan_main([str(tmp_path / "crawl"), "--enqueue", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "set REDIS_URL" in capsys.readouterr().err
