"""`gamma worker --crawl`: the workers of the crawl queue (`gamma scan --enqueue`), stock RQ workers.

A work horse per job, as RQ runs them: a scan of one WARC file runs for long and holds no batch to share.
SIGTERM stops the running scan at once rather than after it (RQ's warm stop would wait for the whole file):
the horse is killed, the job fails as terminated, its Retry puts it back on the queue, and whichever worker
takes it resumes from its checkpoint (the pages already written).

A worker killed outright (SIGKILL, its machine lost) sends no more heartbeats: its job counts as abandoned
``GAMMA_HEARTBEAT + GAMMA_HEARTBEAT_GRACE`` seconds after the last one (RQ's own margin is a fixed 60 s), and every
live crawl worker looks for such jobs each heartbeat, busy or idle, so RQ's StartedJobRegistry cleanup retries it
from its checkpoint (its Retry) long before RQ's ten-minute maintenance would.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis.exceptions
from rq.serializers import JSONSerializer
from rq.worker import Worker

from . import jobs
from .config import Settings
from .redisconn import connect
from .worker import PromptUnsubscribe, ServiceHeartbeats, reap_abandoned

log = logging.getLogger("gamma.server.crawl_worker")

ORPHAN_POLL_S = 0.5   # how often a horse looks for its worker: far inside any heartbeat + grace


class CrawlWorker(ServiceHeartbeats, PromptUnsubscribe, Worker):
    def __init__(self, settings: Settings, connection, *, name: str | None = None):
        self.settings = settings
        self._worker_pid = os.getpid()
        self._reaper_stop = threading.Event()
        super().__init__([jobs.CRAWL_QUEUE], connection=connection, serializer=JSONSerializer, name=name,
                         job_monitoring_interval=max(1, settings.heartbeat))

    def request_stop(self, signum, frame):
        if self.horse_pid:
            self.log.info("Worker %s: stopping; the running scan is requeued and resumes from its checkpoint", self.name)
            self.kill_horse()
        super().request_stop(signum, frame)

    def bootstrap(self, *args, **kwargs):
        super().bootstrap(*args, **kwargs)
        self._reaper_stop.clear()
        threading.Thread(target=self._reap, name="gamma-crawl-reaper", daemon=True).start()

    def teardown(self):
        self._reaper_stop.set()
        super().teardown()

    def _reap(self) -> None:
        while not self._reaper_stop.wait(self.job_monitoring_interval):
            try:
                reap_abandoned(self.connection, self.settings, jobs.CRAWL_QUEUE)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                log.debug("crawl reaper: Redis unavailable (%s)", exc)
            except Exception:
                log.exception("crawl reaper failed")

    def main_work_horse(self, job, queue):
        # RQ puts the horse in a process group of its own, so a worker killed outright leaves it running without
        # heartbeats: its job would be retried by another worker while it still appends to the same checkpoint.
        threading.Thread(target=self._end_when_orphaned, name="gamma-crawl-orphan", daemon=True).start()
        super().main_work_horse(job, queue)

    def _end_when_orphaned(self) -> None:
        while os.getppid() == self._worker_pid:
            time.sleep(ORPHAN_POLL_S)
        os._exit(1)


def run_crawl_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> None:
    CrawlWorker(settings, connect(settings.redis_url), name=name).work(burst=burst)
