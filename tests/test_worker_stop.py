"""Workers stop warm, promptly, whenever they are told: the stop stress test of issue 20.

An idle worker used to miss its stop one time in three (RQ unsubscribed from its command channel before stopping
the pubsub thread, which redis-py 8.2 then joins without a time limit: see ``PromptUnsubscribe``). Each round
here starts a worker, brings it to one situation (just started, mid-batch, just after a job, idle for a while),
sends SIGTERM and requires a warm exit within :data:`server_support.STOP_BOUND` seconds, on one core where the
machine lets us pin (a loaded machine is where the race showed). Both ways workers run: the ``gamma worker``
command (a supervisor and its worker processes, as in production) and the tests' own harness
(``Backend.start_worker``, the same worker processes spawned from the test). ``GAMMA_STOP_ROUNDS`` sets the rounds
per situation (default 5: 40 stops here, 10 more after a self-check fallback in test_selfcheck.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time

import pytest
import server_support
from server_support import (STOP_BOUND, STOP_ROUNDS as ROUNDS, alive, backend_with, eventually, worker_command,
                            worker_processes)

from gamma_detect.server.worker import alive_workers
from stub_detector import image_bytes

SITUATIONS = ("started", "mid_batch", "after_job", "idle")
IDLE_S = 2.0
DELAY_MS = "1500"   # the stub's time per image in the mid-batch rounds: the stop lands inside the batch


@contextlib.contextmanager
def one_core():
    """Pin this process (and so the workers it spawns) to one core, where the machine allows it."""
    try:
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(saved)})
    except (AttributeError, OSError):
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)


def bring_to(b, situation: str) -> str | None:
    """Bring the live worker to ``situation``; the job it was given, if any."""
    if situation == "started":
        return None
    job_id = b.upload(image_bytes(seed=int(time.monotonic_ns() % 100_000))).get_json()["job_id"]
    if situation == "mid_batch":
        eventually(lambda: b.client.get(f"/jobs/{job_id}").get_json()["status"] == "started", 30,
                   what="the worker to start the batch")
        return job_id
    assert b.wait(job_id).get_json()["status"] == "finished"
    if situation == "idle":
        time.sleep(IDLE_S)
    return job_id


def check_after_stop(b, situation: str, job_id: str | None) -> None:
    if situation == "mid_batch":   # a warm stop finishes the batch in hand
        assert b.client.get(f"/jobs/{job_id}").get_json()["status"] == "finished"


@pytest.mark.parametrize("situation", SITUATIONS)
def test_the_worker_command_stops_warm_on_sigterm(situation, monkeypatch):
    if situation == "mid_batch":
        monkeypatch.setenv("GAMMA_STUB_DELAY_MS", DELAY_MS)
    b = backend_with()
    env = {**os.environ, "REDIS_URL": b.settings.redis_url, "GAMMA_DETECTOR": server_support.STUB,
           "GAMMA_WORKERS": "1", "GAMMA_HEARTBEAT": "1", "GAMMA_HEARTBEAT_GRACE": "2", "GAMMA_LOG_LEVEL": "WARNING"}
    pin = ("taskset", "-c", str(min(os.sched_getaffinity(0)))) if shutil.which("taskset") else ()
    slow = []
    try:
        for round_ in range(ROUNDS):
            with worker_command(env, pin) as command:
                eventually(lambda: alive_workers(b.connection, b.settings) >= 1 or command.poll() is not None, 60,
                           what="a live worker")
                assert command.poll() is None, command.stderr.read().decode()[-2000:]
                job_id = bring_to(b, situation)
                spawned = worker_processes(command.pid)
                start = time.monotonic()
                command.send_signal(signal.SIGTERM)
                try:
                    code = command.wait(STOP_BOUND)
                except subprocess.TimeoutExpired:
                    slow.append(round_)
                    continue
                stderr = command.stderr.read().decode()
                assert code == 0 and "killing it" not in stderr, stderr[-2000:]
                assert not any(alive(pid) for pid in spawned)
                assert time.monotonic() - start < STOP_BOUND
                check_after_stop(b, situation, job_id)
                eventually(lambda: alive_workers(b.connection, b.settings) == 0, 10, what="the worker to deregister")
        assert not slow, f"rounds {slow} of {ROUNDS} did not stop within {STOP_BOUND} s of SIGTERM ({situation})"
    finally:
        b.stop()
        server_support.delete_keys()


@pytest.mark.parametrize("situation", SITUATIONS)
def test_the_test_harness_workers_stop_warm(situation, monkeypatch):
    if situation == "mid_batch":
        monkeypatch.setenv("GAMMA_STUB_DELAY_MS", DELAY_MS)
    b = backend_with()
    try:
        with one_core():
            for _ in range(ROUNDS):
                b.start_worker()
                job_id = bring_to(b, situation)
                b.stop()   # asserts that every worker process stopped warm within STOP_BOUND
                check_after_stop(b, situation, job_id)
                eventually(lambda: alive_workers(b.connection, b.settings) == 0, 10, what="the worker to deregister")
    finally:
        b.stop()
        server_support.delete_keys()


def test_a_worker_stopped_while_it_starts_up_stops_warm():
    """A stop at any moment of a worker process's start (interpreter, imports, model, RQ's bootstrap) ends it with
    exit code 0, not -15: threads that importing numpy starts used to take the SIGTERM before RQ's handlers were
    in, and its default action killed the process (a red CI run of the self-check fallback test)."""
    from gamma_detect.server.processes import WorkerProcesses

    b = backend_with()
    try:
        for round_ in range(max(ROUNDS, 8)):
            workers = WorkerProcesses(b.settings.replace(workers=1), name=f"starting-{round_}")
            workers.start()
            time.sleep(round_ * 0.15)   # 0 to 1 s and more: before, during and after the imports and the model's load
            assert workers.stop(timeout=STOP_BOUND) == [0], f"stopped {round_ * 0.15:.2f} s after its start"
        eventually(lambda: alive_workers(b.connection, b.settings) == 0, 10, what="the workers to deregister")
    finally:
        b.stop()
        server_support.delete_keys()

