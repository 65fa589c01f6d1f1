"""`gamma scan --enqueue`: one RQ job per WARC file on the crawl queue, two `gamma worker --crawl` processes, one
stopped mid-file (SIGTERM): every file scanned once, the stopped one resumed from its checkpoint."""

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
from gamma_detect.server.redisconn import connect
from server_support import STOP_BOUND, eventually
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


def worker(name: str, env: dict, log) -> subprocess.Popen:
    # The log to a file: RQ logs every job, and a full pipe nobody reads would block the worker.
    return subprocess.Popen([sys.executable, "-m", "gamma_detect.cli", "worker", "--crawl", "--name", name], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


@pytest.mark.timeout(180)
def test_enqueue_two_workers_one_stopped_mid_file(tmp_path, monkeypatch, crawl_queue, capsys):
    paths = make_crawl(tmp_path / "crawl")
    results = tmp_path / "results"
    monkeypatch.setenv("REDIS_URL", server_support.redis_url())
    assert cli.scan_main([str(tmp_path / "crawl"), "--enqueue", str(results), "--json", "--no-progress"]) == 0
    entries = json.loads(capsys.readouterr().out)["jobs"]
    assert [e["state"] for e in entries] == ["queued"] * 3 and [e["warc_file"] for e in entries] == paths
    env = {**os.environ, "REDIS_URL": server_support.redis_url(), "GAMMA_DETECTOR": server_support.STUB,
           "GAMMA_STUB_DELAY_MS": "150", "GAMMA_LOG_LEVEL": "WARNING",
           "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
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
        stopped.send_signal(signal.SIGTERM)
        stopped.wait(STOP_BOUND)   # stops at once, not after the file
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
    resumed = Job.fetch(job.id, connection=crawl_queue, serializer=JSONSerializer).return_value()
    assert 0 < resumed["pages"] < PAGES   # the second attempt scanned only what the first had not written
    # Enqueued again: every file is finished, nothing queued.
    time.sleep(0.01)
    assert cli.scan_main([str(tmp_path / "crawl"), "--enqueue", str(results), "--json", "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out)["jobs"]
    assert [e["state"] for e in again] == ["finished"] * 3
    assert Queue(jobs.CRAWL_QUEUE, connection=crawl_queue, serializer=JSONSerializer).count == 0


def test_enqueue_needs_redis(tmp_path, monkeypatch, capsys):
    make_crawl(tmp_path / "crawl")
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert cli.scan_main([str(tmp_path / "crawl"), "--enqueue", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "set REDIS_URL" in capsys.readouterr().err
