"""`gamma worker` with GAMMA_WORKERS: one batching worker per process at a lower CPU priority, restarted when one
dies, all stopped together; the thread setting each worker gets."""

import os
import signal
import subprocess
import sys

import pytest
import server_support
from server_support import alive, backend, eventually, worker_processes  # noqa: F401 - the fixture

from gamma_detect.server.config import Settings
from gamma_detect.server.processes import for_workers, worker_count
from gamma_detect.server.worker import alive_workers
from stub_detector import image_bytes


def test_worker_count_and_threads():
    assert worker_count(Settings(workers=3)) == 3
    assert worker_count(Settings()) == len(os.sched_getaffinity(0))
    assert for_workers(Settings(workers=2)).threads == 1          # several workers: one inference thread each
    assert for_workers(Settings(workers=2, threads=4)).threads == 4   # unless set
    assert for_workers(Settings(workers=1)).threads == 0          # one worker: the runtime's default (all cores)
    for name in ("workers", "threads", "worker_nice"):
        with pytest.raises(ValueError, match=f"GAMMA_{name.upper()}"):
            Settings(**{name: -1})


def test_worker_processes_share_the_queue_restart_and_stop_together(backend):
    env = {**os.environ, "REDIS_URL": backend.settings.redis_url, "GAMMA_DETECTOR": server_support.STUB,
           "GAMMA_WORKERS": "3", "GAMMA_WORKER_NICE": "5", "GAMMA_HEARTBEAT": "1", "GAMMA_HEARTBEAT_GRACE": "2", "GAMMA_LOG_LEVEL": "WARNING"}
    parent = subprocess.Popen([sys.executable, "-m", "gamma_detect.cli", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        eventually(lambda: len(worker_processes(parent.pid)) == 3, 60, what="three worker processes")
        eventually(lambda: alive_workers(backend.connection, backend.settings) >= 3, 60, what="three live workers")
        # below the supervisor's (and the API's) CPU priority
        nice = os.getpriority(os.PRIO_PROCESS, 0) + 5
        eventually(lambda: {os.getpriority(os.PRIO_PROCESS, pid) for pid in worker_processes(parent.pid)} == {nice},
                   10, what="every worker process at the nice level")
        ids = [backend.upload(image_bytes(seed=900 + i)).get_json()["job_id"] for i in range(12)]
        assert all(backend.wait(i).get_json()["status"] == "finished" for i in ids)

        victim = min(worker_processes(parent.pid))
        os.kill(victim, signal.SIGKILL)   # killed outright: the parent starts another
        eventually(lambda: len(worker_processes(parent.pid)) == 3 and victim not in worker_processes(parent.pid), 30,
                   what="a replacement worker process")
        job = backend.upload(image_bytes(seed=950)).get_json()["job_id"]
        assert backend.wait(job).get_json()["status"] == "finished"

        spawned = worker_processes(parent.pid)
        parent.send_signal(signal.SIGTERM)   # warm shutdown of all of them
        assert parent.wait(60) == 0, parent.stderr.read().decode()[-2000:]
        eventually(lambda: not any(alive(pid) for pid in spawned), 30, what="the worker processes to end")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def test_a_model_that_cannot_load_stops_the_worker_command_at_once(backend, tmp_path):
    env = {**os.environ, "REDIS_URL": backend.settings.redis_url, "GAMMA_MODEL": str(tmp_path / "no-model"),
           "GAMMA_WORKERS": "2"}
    env.pop("GAMMA_DETECTOR", None)
    done = subprocess.run([sys.executable, "-m", "gamma_detect.cli", "worker"], env=env, capture_output=True,
                          timeout=60)
    assert done.returncode == 2
    assert "the model cannot be loaded: no model manifest" in done.stderr.decode() and b"Traceback" not in done.stderr
    assert alive_workers(backend.connection, backend.settings) == 0   # no worker started to crash in a loop


def _worker_env(backend, **extra) -> dict:
    return {**os.environ, "REDIS_URL": backend.settings.redis_url, "GAMMA_DETECTOR": server_support.STUB,
            "GAMMA_HEARTBEAT": "1", "GAMMA_HEARTBEAT_GRACE": "2", "GAMMA_LOG_LEVEL": "WARNING", **extra}


def test_burst_workers_empty_the_queue_and_the_command_ends(backend):
    ids = [backend.upload(image_bytes(seed=960 + i)).get_json()["job_id"] for i in range(6)]
    done = subprocess.run([sys.executable, "-m", "gamma_detect.cli", "worker", "--burst"], timeout=120,
                          env=_worker_env(backend, GAMMA_WORKERS="2"), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert all(backend.wait(i, 1).get_json()["status"] == "finished" for i in ids)


def test_workers_stop_when_their_supervisor_is_killed_outright(backend):
    parent = subprocess.Popen([sys.executable, "-m", "gamma_detect.cli", "worker"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=_worker_env(backend, GAMMA_WORKERS="2"))
    try:
        spawned = eventually(lambda: worker_processes(parent.pid) if len(worker_processes(parent.pid)) == 2 else None, 60,
                             what="two worker processes")
        parent.kill()   # no chance to stop them: they notice the parent is gone and stop warm
        parent.wait(10)
        eventually(lambda: not any(alive(pid) for pid in spawned), 30, what="the orphaned workers to stop")
    finally:
        if parent.poll() is None:
            parent.kill()


def test_restart_delays_double_for_children_that_keep_dying_early_up_to_a_limit():
    from gamma_detect.server.processes import MAX_RESTART_DELAY, RESTART_DELAY, restart_delay

    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [RESTART_DELAY * f for f in (1, 2, 4, 8)]
    assert restart_delay(50) == MAX_RESTART_DELAY


def test_a_model_file_made_unreadable_under_running_workers_backs_off_and_readyz_says_why(backend, tmp_path,
                                                                                           monkeypatch, caplog):
    """Found by bench/soak.py: a restarted worker that could not load the replaced model file died at once, was
    started again every second (a crash loop), and nothing said why. Now its restarts back off, /readyz names the
    failure, and the worker still holding the model keeps serving."""
    import logging

    from stub_detector import STUB_MODEL

    model = tmp_path / "model.bin"
    model.write_bytes(STUB_MODEL)
    monkeypatch.setenv("GAMMA_STUB_MODEL_FILE", str(model))
    backend.publish_model()
    workers = backend.start_worker(count=2)
    assert "worker_failures" not in backend.client.get("/readyz").get_json()

    model.write_bytes(b"not a model\n")   # replaced under the running deployment
    caplog.set_level(logging.WARNING, logger="gamma.server.processes")
    victim = min(worker_processes(os.getpid()))
    os.kill(victim, signal.SIGKILL)

    def delays() -> list[str]:
        return [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records if "starting it again" in r.getMessage()]
    eventually(lambda: len(delays()) >= 3, 30, what="three restarts planned")
    assert delays()[:3] == ["1 s", "2 s", "4 s"], delays()   # backing off, not a loop
    assert sum("cannot load the model" in r.getMessage() for r in caplog.records) >= 2
    ready = backend.client.get("/readyz")
    assert ready.status_code == 200   # the other worker still serves
    failures = ready.get_json()["worker_failures"]
    assert len(failures) == 1 and "the model cannot be loaded: refusing" in failures[0]["error"], failures
    job = backend.upload(image_bytes(seed=990)).get_json()["job_id"]
    assert backend.wait(job).get_json()["status"] == "finished"

    model.write_bytes(STUB_MODEL)   # repaired: the next start loads it, and the failure is gone
    eventually(lambda: "worker_failures" not in backend.client.get("/readyz").get_json(), 30,
               what="the failure to clear after the repair")
    assert len(worker_processes(os.getpid())) == 2
    assert workers.starts <= 6
