"""The batching inference worker: an RQ worker (no fork per job) that loads the Detector once.

Having taken one analyze job, it takes up to ``batch_size - 1`` more that are already waiting
or that arrive within ``batch_wait_ms``, starts each through RQ's own bookkeeping (execution
record, StartedJobRegistry, status), decodes them in threads, runs one ``Detector.predict`` for
the batch, and completes each job through RQ's own success/failure handling (results,
registries, retries, callbacks). A heartbeat thread keeps every execution of the running batch
alive with a short TTL, so a worker killed mid-batch leaves jobs whose heartbeats expire within
``heartbeat + heartbeat_grace`` seconds; any live worker (and the API, when a client looks)
then moves them to failed (``worker_lost``) or, with retries left, back to the queue.

RQ's documented extension points do most of it (``execute_job``, ``bootstrap``, ``teardown``,
``heartbeat``, ``get_heartbeat_ttl``, ``prepare_execution``, ``prepare_job_execution``,
``maintain_heartbeats``, ``cleanup_execution``, ``handle_exception``, ``Queue.dequeue_any``). What has
no public form is listed in :data:`RQ_PRIVATE`; pyproject.toml pins RQ to the minor release these were
checked against and tests/test_rq_contract.py fails, naming them, when an upgrade changes any.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis.exceptions
from rq.job import JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException, TimerDeathPenalty
from rq.utils import now
from rq.worker import SimpleWorker, WorkerStatus

from . import jobs
from .config import Settings, configure_rq
from .errors import ApiError
from .metrics import BATCH_BUCKETS, process_metrics
from .processes import STOP_SIGNALS

log = logging.getLogger("gamma.server.worker")

_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# RQ internals this worker relies on (no public equivalent in RQ 3.0), with why:
RQ_PRIVATE = {
    "Worker._shutdown_requested_date": "run_worker tells a warm shutdown from a lost Redis after work() returns",
    "Worker._finalize_success": "completes a batched job exactly as RQ completes one (result, callbacks, registries)",
    "Worker._finalize_failure": "fails a batched job exactly as RQ fails one (retries, callbacks, registries)",
}


def live_key(settings: Settings) -> str:
    return settings.key("workers")


def alive_workers(connection, settings: Settings, window: float | None = None) -> int:
    window = window or max(10.0, 3 * settings.heartbeat)
    return int(connection.zcount(live_key(settings), time.time() - window, "+inf"))


def reap_abandoned(connection, settings: Settings, queue: str = jobs.INFERENCE_QUEUE) -> None:
    """Fail (or retry) started jobs of ``queue`` whose worker stopped sending heartbeats."""
    # Timer-based death penalty: this runs in API threads and maintenance threads, where
    # signals (RQ's default for the failure callback's time limit) are not available.
    StartedJobRegistry(queue, connection=connection, serializer=JSONSerializer,
                       death_penalty_class=TimerDeathPenalty).cleanup()


def _redis_retry(action, what: str, patience: float = 120.0):
    """Run `action`, waiting out a Redis restart (a transaction that did not reach EXEC left nothing behind)."""
    delay, deadline = 0.25, time.monotonic() + patience
    while True:
        try:
            return action()
        except _REDIS_ERRORS as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("Redis unavailable while %s (%s); retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class ServiceHeartbeats:
    """A worker mixin (with ``settings`` and ``job_monitoring_interval=max(1, settings.heartbeat)``): a running job's
    heartbeat lives ``heartbeat + heartbeat_grace`` seconds, so a job whose worker died counts as abandoned then,
    not after RQ's fixed 60 s margin."""

    settings: Settings

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        return int(self.job_monitoring_interval + max(1, self.settings.heartbeat_grace))


class PromptUnsubscribe:
    """A worker mixin: its warm stop never waits on RQ's pubsub thread."""

    def unsubscribe(self):
        # RQ sends UNSUBSCRIBE and then stops its pubsub thread, which redis-py joins without a time limit. A
        # thread that has already read the UNSUBSCRIBE reply goes back into get_message and, no longer
        # subscribed, waits there for a subscription for its whole poll (RQ's 60 s): the warm stop of an idle
        # worker then hung for a minute. Ending the thread's loop first makes that reply its last read.
        if self.pubsub_thread:
            self.pubsub_thread.stop(timeout=0)
        super().unsubscribe()


class BatchWorker(ServiceHeartbeats, PromptUnsubscribe, SimpleWorker):
    """Runs analyze jobs in batches; any other job (a scan collector) as RQ's SimpleWorker would."""

    log_job_description = False   # job arguments hold URLs: keep them out of the logs
    log_result_lifespan = False
    exponential_backoff_factor = 2.0
    max_connection_wait_time = 5.0

    def __init__(self, context: jobs.Context, *, name: str | None = None, worker_ttl: int = 60):
        settings = context.settings
        self.context = context
        self.settings = settings
        self.batch_size = max(1, settings.batch_size)
        self.batch_wait = max(0, settings.batch_wait_ms) / 1000
        queue = Queue(jobs.INFERENCE_QUEUE, connection=context.connection, serializer=JSONSerializer)
        super().__init__([queue], name=name, connection=context.connection, serializer=JSONSerializer,
                         job_monitoring_interval=max(1, settings.heartbeat), worker_ttl=worker_ttl,
                         log_job_description=False)
        self.metrics = process_metrics(lambda: self.connection, settings.key("metrics"))
        self._maintenance: threading.Thread | None = None
        self._maintenance_stop = threading.Event()
        self._batch_lock = threading.Lock()
        self._running: list[tuple] = []   # (job, execution) of the batch in progress
        self._pool = ThreadPoolExecutor(max_workers=max(2, min(8, self.batch_size)), thread_name_prefix="gamma-decode")
        self.batches = 0

    # ------------------------------------------------------------------ lifecycle
    def work(self, *args, **kwargs) -> bool:
        saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        try:
            return super().work(*args, **kwargs)
        finally:
            for sig, handler in saved.items():   # RQ installs its own; give the caller's back
                signal.signal(sig, handler)

    def check_for_suspension(self, burst: bool) -> None:
        # The first step of RQ's work loop, after it installed its stop handlers: a stop held back while the worker
        # started (blocked in this thread, or recorded by hold_stops where another thread took it) is delivered
        # now, as a warm stop.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if _held_stops:
            held = _held_stops[0]
            _held_stops.clear()
            self.request_stop(held, None)   # raises StopRequested: RQ's loop ends warm
        super().check_for_suspension(burst)

    def bootstrap(self, *args, **kwargs):
        self.publish_model(replace=True)
        super().bootstrap(*args, **kwargs)
        self._maintenance_stop.clear()
        self._maintenance = threading.Thread(target=self._maintain, name="gamma-worker-maintenance", daemon=True)
        self._maintenance.start()

    def teardown(self):
        self._maintenance_stop.set()
        if self._maintenance is not None:   # ended first: a round of it in flight would mark us live again
            self._maintenance.join(timeout=30)
        try:
            self.connection.zrem(live_key(self.settings), self.name)
            lock = self.settings.key("scheduler-lock")
            if self.connection.get(lock) in (self.name, self.name.encode()):
                self.connection.delete(lock)
        except _REDIS_ERRORS:
            pass
        super().teardown()

    def publish_model(self, replace: bool = False) -> dict:
        record = self.context.model
        key = self.settings.key("model")
        blob = json.dumps(record, sort_keys=True)
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.set(key, blob, nx=not replace)
            pipe.zadd(live_key(self.settings), {self.name: time.time()})
            pipe.execute()
        return record

    def _maintain(self) -> None:
        """Liveness, abandoned-job reaping, retries due (RQ's scheduler, run in-thread), stuck-job cleanup."""
        # RQ's scheduler, run in this thread under a short lock of ours (RQ's own lock outlives a
        # killed worker by a minute, which would hold back every retry that long).
        scheduler = RQScheduler(self.queues, connection=self.connection, serializer=JSONSerializer,
                                interval=self.job_monitoring_interval, name=f"{self.name}-scheduler")
        scheduler.prepare_registries(self.queue_names())
        lock = self.settings.key("scheduler-lock")
        lock_ms = int(2000 * self.job_monitoring_interval + 1000)
        last_intermediate = 0.0
        while not self._maintenance_stop.wait(self.job_monitoring_interval):
            try:
                self.publish_model(replace=False)
                self.connection.zremrangebyscore(live_key(self.settings), "-inf", time.time() - 3600)
                reap_abandoned(self.connection, self.settings)
                owner = self.connection.set(lock, self.name, nx=True, px=lock_ms) or \
                    self.connection.get(lock) in (self.name, self.name.encode())
                if owner:
                    self.connection.pexpire(lock, lock_ms)
                    scheduler.enqueue_scheduled_jobs()
                if time.monotonic() - last_intermediate > 30:
                    last_intermediate = time.monotonic()
                    for queue in self.queues:
                        queue.intermediate_queue.cleanup(self, queue)
            except _REDIS_ERRORS as exc:
                log.debug("maintenance: Redis unavailable (%s)", exc)
            except Exception:
                log.exception("maintenance failed")

    def _beat(self, done: threading.Event) -> None:
        while not done.wait(self.job_monitoring_interval):
            with self._batch_lock:
                running = list(self._running)
            for job, execution in running:
                try:
                    self.maintain_heartbeats(job, execution)
                except _REDIS_ERRORS:
                    pass
                except Exception:
                    log.exception("heartbeat failed for job %s", job.id)

    # ------------------------------------------------------------------ batching
    def execute_job(self, job, queue):
        if job.func_name != jobs.ANALYZE:
            return super().execute_job(job, queue)
        self.run_batch([(job, queue), *self._take_more(queue, self.batch_size - 1)])
        self.set_state(WorkerStatus.IDLE)

    def _take_more(self, queue: Queue, count: int) -> list:
        """Up to ``count`` more analyze jobs, waiting or arriving within the batch wait (run_batch starts them at once).

        Another job met on the way (a scan's collector) goes back to the front of the queue, and the batch takes no
        more: held until the batch ended, it sat taken off the queue but not started, where the abandoned-job reaper
        cannot see it, so a worker killed mid-batch left it to RQ's intermediate-queue cleanup, which fails it
        ("stuck in intermediate queue", no API error) a minute later (found by bench/soak.py)."""
        taken = []
        deadline = time.monotonic() + self.batch_wait
        while len(taken) < count:
            # Non-blocking dequeues (LMOVE into RQ's intermediate queue) and short sleeps: Redis wakes blocked
            # clients on its 100 ms timer, far coarser than a batch wait of a few milliseconds.
            # Through a Redis restart: a loss here would leave the jobs already taken off the queue unstarted.
            fetched = _redis_retry(lambda: Queue.dequeue_any(
                [queue], None, connection=self.connection, job_class=self.job_class, serializer=self.serializer,
                death_penalty_class=self.death_penalty_class), "filling a batch")
            if fetched is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(remaining, 0.003))
                continue
            job, job_queue = fetched
            if job.func_name != jobs.ANALYZE:
                with self.connection.pipeline() as pipe:
                    pipe.lrem(job_queue.intermediate_queue_key, 1, job.id)
                    job_queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                    pipe.execute()
                break
            taken.append(fetched)
        return taken

    def run_batch(self, batch: list) -> None:
        """Start, score and complete a batch of analyze jobs."""
        started = []
        for job, queue in batch:
            # Each step is one MULTI/EXEC: after a Redis restart it is simply done again.
            if _redis_retry(lambda: job.get_status(refresh=True), "starting a job") in (JobStatus.CANCELED,
                                                                                       JobStatus.STOPPED):
                _redis_retry(lambda: self.connection.lrem(queue.intermediate_queue_key, 1, job.id), "dropping a job")
                continue
            execution = _redis_retry(lambda: self.prepare_execution(job), "starting a job")
            _redis_retry(lambda: self.prepare_job_execution(job, remove_from_intermediate_queue=True), "starting a job")
            job.started_at = now()
            started.append((job, queue, execution))
            if job.enqueued_at:
                self.metrics.observe("gamma_job_queue_seconds", (job.started_at - job.enqueued_at).total_seconds())
        if not started:
            return
        done = threading.Event()
        with self._batch_lock:
            self._running = [(job, execution) for job, _, execution in started]
        beater = threading.Thread(target=self._beat, args=(done,), name="gamma-batch-heartbeat", daemon=True)
        beater.start()
        try:
            outcomes = self._score(started)
        finally:
            done.set()
            beater.join(timeout=5)
            with self._batch_lock:
                self._running = []
        for (job, queue, execution), (value, exc_info) in zip(started, outcomes):
            self._complete(job, queue, execution, value, exc_info)
        self.batches += 1

    def _score(self, started: list) -> list:
        """(result, None) or (None, exc_info) per job."""
        ctx = self.context
        detector = ctx.get_detector()
        min_side = jobs.model_record(detector)["min_side"]
        outcomes: list = [None] * len(started)
        timeout = max(int(job.timeout or self.settings.job_timeout) for job, _, _ in started)
        try:
            with self.death_penalty_class(timeout, JobTimeoutException, job_id=started[0][0].id):
                def prepare(payload):
                    return _redis_retry(lambda: jobs.prepare(payload, ctx, min_side), "loading an image")

                futures = [self._pool.submit(prepare, job.args[0]) for job, _, _ in started]
                prepared = {}
                for index, future in enumerate(futures):
                    try:
                        ready = future.result()
                    except Exception:
                        outcomes[index] = (None, sys.exc_info())
                        continue
                    if ready.cached is not None:
                        outcomes[index] = (_redis_retry(lambda: jobs.finish_cached(ready, ctx), "caching a URL"), None)
                    else:
                        prepared[index] = ready
                if prepared:
                    indexes = sorted(prepared)
                    start = time.perf_counter()
                    predictions = self._predict([prepared[i] for i in indexes])
                    elapsed = time.perf_counter() - start
                    self.metrics.observe("gamma_batch_size", len(indexes), buckets=BATCH_BUCKETS)
                    self.metrics.observe("gamma_inference_seconds", elapsed)
                    extra = {"inference_ms": round(elapsed * 1000, 2), "batch_size": len(indexes)}
                    for i, prediction in zip(indexes, predictions):
                        if isinstance(prediction, BaseException):
                            outcomes[i] = (None, (type(prediction), prediction, prediction.__traceback__))
                            continue
                        try:
                            job = started[i][0]
                            waited = (job.started_at - job.enqueued_at).total_seconds() if job.enqueued_at else 0.0
                            timings = {**extra, "queue_ms": round(waited * 1000, 2)}
                            outcomes[i] = (_redis_retry(lambda: jobs.finish(prepared[i], prediction, detector, ctx,
                                                                            timings), "storing a result"), None)
                        except Exception:
                            outcomes[i] = (None, sys.exc_info())
        except JobTimeoutException:
            info = sys.exc_info()
            outcomes = [o if o is not None and o[0] is not None else (None, info) for o in outcomes]
        return [o if o is not None else (None, (ApiError, ApiError("internal_error"), None)) for o in outcomes]

    def _predict(self, prepared: list) -> list:
        """One predict call for the batch; if it raises, each image alone, so one bad image fails alone."""
        from gamma_detect.crops import ImageTooSmall

        detector = self.context.get_detector()
        try:
            return list(detector.predict([p.rgb for p in prepared], native=[p.native for p in prepared]))
        except JobTimeoutException:
            raise
        except Exception:
            if len(prepared) == 1:
                exc = sys.exc_info()[1]
                return [ApiError("image_too_small", str(exc)) if isinstance(exc, ImageTooSmall) else exc]
            results = []
            for p in prepared:
                results.extend(self._predict([p]))
            return results

    def _complete(self, job, queue, execution, value, exc_info) -> None:
        payload = job.args[0] if job.args else {}

        def canceled() -> bool:
            # A cancel that landed between run_batch's status check and the start had `started` written over its
            # status (and its upload deleted): RQ's canceled registry still holds the job.
            return job.get_status(refresh=True) in (JobStatus.CANCELED, JobStatus.STOPPED) \
                or job.id in queue.canceled_job_registry

        if _redis_retry(canceled, "checking for cancellation"):
            def drop():
                with self.connection.pipeline() as pipe:
                    self.cleanup_execution(job, pipeline=pipe, execution=execution)
                    if job.get_status(refresh=False) not in (JobStatus.CANCELED, JobStatus.STOPPED):
                        job.set_status(JobStatus.CANCELED, pipeline=pipe)
                    pipe.execute()
                jobs.end_of_job(payload, self.connection)
            _redis_retry(drop, "dropping a canceled job")
            self.metrics.inc("gamma_jobs_total", {"kind": "analyze", "outcome": "canceled"})
            return
        if exc_info is None:
            _redis_retry(lambda: self._finalize_success(job, queue, execution, value), "completing a job")
            _redis_retry(lambda: jobs.end_of_job(payload, self.connection), "cleaning up a job")
            self.metrics.inc("gamma_jobs_total", {"kind": "analyze", "outcome": "finished"})
            return
        if not jobs.api_error(exc_info[1]).retryable:
            job.retries_left = 0   # retries are for transient fetch failures only
        retrying = job.should_retry
        # RQ runs the job's failure callback (jobs.on_failure), which records the API error by exception type.
        _redis_retry(lambda: self._finalize_failure(job, queue, execution, exc_info), "failing a job")
        if not retrying:
            _redis_retry(lambda: jobs.end_of_job(payload, self.connection), "cleaning up a job")
        self.metrics.inc("gamma_jobs_total", {"kind": "analyze", "outcome": "retried" if retrying else "failed"})

    def handle_exception(self, job, *exc_info):
        # Expected, classified failures (bad image, refused URL) are one log line, not a traceback.
        error = exc_info[1] if len(exc_info) > 1 else None
        if isinstance(error, ApiError):
            self.log.info("Worker %s: job %s failed: %s", self.name, job.id, error.code)
            return
        super().handle_exception(job, *exc_info)


_held_stops: list[int] = []   # SIGINT/SIGTERM taken by hold_stops' handler, for the next work loop


def hold_stops() -> None:
    """Record SIGINT and SIGTERM until a work loop takes them (BatchWorker.check_for_suspension) instead of their
    default action. Blocking them in the main thread is not enough: threads started before (OpenBLAS's, by
    importing numpy) still take a process's signal, and SIGTERM's default action then killed a worker that was
    starting up. RQ's handlers replace this one while a work loop runs and hand it back after."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: _held_stops.append(signum))


def run_worker(context: jobs.Context, *, burst: bool = False, name: str | None = None, worker_ttl: int = 60,
               logging_level: str | None = None) -> None:
    """Run a BatchWorker in this process's main thread until SIGINT or SIGTERM (a warm stop: the batch in hand
    finishes), starting a fresh one if the loop ends on an error (e.g. Redis away)."""
    configure_rq(context.settings)   # RQ is imported already: this checks it took the service's key prefix
    context.get_detector()   # load the model once, before taking jobs
    attempt = 0
    while True:
        # Held from here until the work loop can take a stop warmly (BatchWorker.check_for_suspension): also while a
        # worker that lost Redis is replaced, when RQ's handlers are gone.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        # RQ's Worker talks to Redis as it is made: a Redis still restarting is waited out, not fatal to the process.
        worker = _redis_retry(lambda: BatchWorker(context, name=f"{name}-{attempt}" if name else None,
                                                  worker_ttl=worker_ttl), "starting a worker")
        try:
            worker.work(burst=burst, logging_level=logging_level or context.settings.log_level)
        except _REDIS_ERRORS as exc:
            log.warning("worker lost Redis (%s); starting again", exc)
        if burst or worker._shutdown_requested_date is not None:
            break
        attempt += 1
        time.sleep(1.0)
