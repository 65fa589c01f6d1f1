"""Worker processes: one batching worker per core, each with one inference thread, at a lower CPU priority.

On a 2-core machine two single-threaded workers score about 1.2x (INT8 1.2x, FP32 1.1x) the images per
second of one worker whose ONNX Runtime session spreads over both cores (``bench/end_to_end.py``): a
worker's decode, cropping and stitching run between its graph calls, and one session's threads sit idle
(or spin) through them, while a second process fills that time with its own graph. A process each, not a
thread each: the Python between graph calls holds the GIL.

``gamma serve`` (embedded Redis) and ``gamma worker`` run ``Settings.workers`` of them, spawned beside the
process that supervises them, each loading the model itself. They run ``Settings.worker_nice`` steps below
the API's CPU priority, so cached answers (a few milliseconds of the API's CPU) are not queued behind
inference that holds every core. A worker that dies (killed, out of memory) is started again; its batch's
jobs are failed or retried by the heartbeat reaper as for any lost worker. One that keeps dying soon after its
start (a model file replaced by an unreadable one under a running deployment) is started again ever later, up to
every ``MAX_RESTART_DELAY`` seconds, not in a loop; one that cannot load the model says why in Redis
(:func:`record_failure`), and ``/readyz`` shows it, while the workers that still hold the model keep serving.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

from gamma_detect.runtime.manifest import ManifestError

from .config import Settings, configure_logging
from .malloc import tune_malloc

log = logging.getLogger("gamma.server.processes")

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
RESTART_DELAY = 1.0        # seconds between a child's death and its restart, doubled for each early death in a row
MAX_RESTART_DELAY = 60.0
STABLE_AFTER = 30.0        # a child that ran this long died late: its restart waits RESTART_DELAY again
MODEL_UNLOADABLE = 3       # a child's exit code: the model cannot be loaded (the reason is in Redis)
MODEL_ERRORS = (ManifestError, OSError, ValueError)   # what a model that cannot be loaded raises
FAILURE_WINDOW = 600.0     # seconds a recorded failure is shown by /readyz (a failing slot records again each try)


def restart_delay(early_deaths: int) -> float:
    """Seconds before restarting a child after ``early_deaths`` deaths in a row, each soon after its start."""
    return min(MAX_RESTART_DELAY, RESTART_DELAY * 2 ** max(0, early_deaths - 1))


def failures_key(settings: Settings) -> str:
    return settings.key("worker-failures")


def record_failure(connection, settings: Settings, slot: str, error: str) -> None:
    """Say in Redis why the worker process of ``slot`` cannot run (what /readyz shows)."""
    connection.hset(failures_key(settings), slot, json.dumps({"worker": slot, "error": error, "at": time.time()}))


def recent_failures(connection, settings: Settings) -> list[dict]:
    """Failures recorded within FAILURE_WINDOW, oldest first; older ones are dropped."""
    key, current, stale = failures_key(settings), [], []
    for slot, raw in connection.hgetall(key).items():
        try:
            entry = json.loads(raw)
            fresh = time.time() - float(entry["at"]) < FAILURE_WINDOW
        except (ValueError, KeyError, TypeError):
            fresh = False
        (current.append(entry) if fresh else stale.append(slot))
    if stale:
        connection.hdel(key, *stale)
    return sorted(current, key=lambda e: e["at"])


def usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def worker_count(settings: Settings) -> int:
    return settings.workers or usable_cores()


def for_workers(settings: Settings) -> Settings:
    """Settings as each of the workers runs them: one inference thread each when there are several (unless
    GAMMA_THREADS says otherwise)."""
    if settings.threads or worker_count(settings) == 1:
        return settings
    return settings.replace(threads=1)


def _child(settings: Settings, burst: bool, name: str | None, parent: int, slot: str,
           started: "multiprocessing.synchronize.Event") -> None:
    from . import jobs
    from .redisconn import connect
    from .worker import hold_stops, run_worker

    # A stop that arrives while the worker starts up is held until RQ's handlers can make it a warm one
    # (BatchWorker.check_for_suspension releases it): blocked in this thread, recorded where another takes it.
    hold_stops()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    started.set()   # from here a stop is never lost nor fatal (WorkerProcesses.stop waits for this)
    configure_logging(settings)
    tune_malloc()   # a spawned interpreter: the parent's allocator settings are not inherited
    os.setpgid(0, 0)   # out of the terminal's group: Ctrl-C stops the parent, which stops us with SIGTERM
    os.nice(settings.worker_nice)   # ONNX Runtime's threads, started later, inherit it
    threading.Thread(target=_exit_with_parent, args=(parent,), name="gamma-parent-watch", daemon=True).start()
    context = jobs.Context(settings, connect(settings.redis_url))
    jobs.set_context(context)
    try:
        context.get_detector()
    except MODEL_ERRORS as exc:   # e.g. the model file replaced under a running deployment
        log.error("worker process %s: the model cannot be loaded: %s", slot, exc)
        _tell_redis(lambda: record_failure(context.connection, settings, slot, f"the model cannot be loaded: {exc}"))
        sys.exit(MODEL_UNLOADABLE)
    _tell_redis(lambda: context.connection.hdel(failures_key(settings), slot))
    run_worker(context, burst=burst, name=name)


def _tell_redis(action) -> None:
    """Best effort: Redis may be restarting just now (the log has the failure all the same)."""
    import redis.exceptions

    try:
        action()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        log.warning("could not record the worker's state in Redis: %s", exc)


def _exit_with_parent(parent: int) -> None:
    """A parent killed outright cannot stop us (and took an embedded Redis with it): stop warm on our own."""
    while os.getppid() == parent:
        time.sleep(2.0)
    log.warning("the parent process %d is gone; stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)


class WorkerProcesses:
    """The ``Settings.workers`` worker processes (each with :func:`for_workers`' settings), restarted when one
    dies, stopped warm (the batch in hand finishes) by :meth:`stop`."""

    def __init__(self, settings: Settings, *, burst: bool = False, name: str | None = None):
        self.settings, self.count, self.burst, self.name = for_workers(settings), worker_count(settings), burst, name
        self._spawn = multiprocessing.get_context("spawn")   # no fork: the parent holds threads and sockets
        self._processes: list = [None] * self.count
        self._stop_safe: list = [None] * self.count   # per child: the Event it sets once it can take a stop
        self._started = [0.0] * self.count        # when each child was started (monotonic)
        self._early_deaths = [0] * self.count     # deaths in a row soon after a start, per child
        self._due: list[float | None] = [None] * self.count   # when a dead child is to be started again
        self.starts = 0                            # children started, restarts included
        self._stopping = threading.Event()

    def _slot(self, i: int) -> str:
        return f"{self.name or socket.gethostname()}:{os.getpid()}:{i + 1}"

    def _start(self, i: int) -> None:
        # A restart gets a name of its own: a killed child's RQ registration outlives it by worker_ttl, and RQ
        # refuses a second worker of that name while it lasts.
        restart = f"r{self.starts}" if self._started[i] else ""
        name = f"{self.name}-p{i + 1}{restart}" if self.name else None
        started = self._spawn.Event()   # set by the child once a stop can neither kill it nor be lost
        process = self._spawn.Process(target=_child, args=(self.settings, self.burst, name, os.getpid(), self._slot(i),
                                                           started), name=f"gamma-worker-{i + 1}", daemon=True)
        process.start()
        self._processes[i], self._stop_safe[i] = process, started
        self._started[i], self._due[i] = time.monotonic(), None
        self.starts += 1

    def _supervise(self) -> None:
        while not self._stopping.wait(min(RESTART_DELAY, 0.5)):
            for i, process in enumerate(self._processes):
                if process.exitcode is None or self._stopping.is_set():
                    continue
                if self.burst and process.exitcode == 0:
                    continue   # a burst worker that emptied the queue is done
                if self._due[i] is None:
                    lived = time.monotonic() - self._started[i]
                    self._early_deaths[i] = self._early_deaths[i] + 1 if lived < STABLE_AFTER else 1
                    delay = restart_delay(self._early_deaths[i])
                    self._due[i] = time.monotonic() + delay
                    why = "it cannot load the model" if process.exitcode == MODEL_UNLOADABLE else \
                        f"it exited with {process.exitcode}"
                    log.warning("worker process %s stopped (%s); starting it again in %.0f s", process.name, why, delay)
                elif time.monotonic() >= self._due[i]:
                    self._start(i)

    def start(self) -> None:
        """Start them, and the thread that restarts one that dies."""
        for i in range(self.count):
            self._start(i)
        threading.Thread(target=self._supervise, name="gamma-worker-processes", daemon=True).start()

    def run(self) -> None:
        """Start them and supervise until SIGINT or SIGTERM (or, burst workers, until the queue is empty); then stop
        them warm."""
        stop = threading.Event()
        saved = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
        try:
            self.start()
            while not stop.wait(0.5):
                if self.burst and all(p.exitcode == 0 for p in self._processes):
                    break
        finally:
            self.stop()
            for sig, handler in saved.items():
                signal.signal(sig, handler)

    def stop(self, timeout: float = 60.0) -> list:
        """Stop them warm; one still running after ``timeout`` seconds is killed. Their exit codes (0: a warm stop)."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for process, safe in zip(self._processes, self._stop_safe):
            if process is None:
                continue
            # A child still starting its interpreter would die of SIGTERM's default action: wait until it holds stops.
            while process.exitcode is None and not safe.wait(0.1) and time.monotonic() < deadline:
                continue
            if process.exitcode is None:
                process.terminate()   # SIGTERM: RQ's warm shutdown, after the batch in hand
        for process in self._processes:
            if process is not None:
                process.join(timeout)
                if process.exitcode is None:
                    log.warning("worker process %s did not stop within %.0f s; killing it", process.name, timeout)
                    process.kill()
                    process.join(5)
        return [process.exitcode for process in self._processes if process is not None]
