"""`gamma worker --crawl`: the workers of the crawl queue (`gamma scan --enqueue`), stock RQ workers.

A work horse per job, as RQ runs them: a scan of one WARC file runs for long and holds no batch to share.
SIGTERM stops the running scan at once rather than after it (RQ's warm stop would wait for the whole file):
the horse is killed, the job fails as terminated, its Retry puts it back on the queue, and whichever worker
takes it resumes from its checkpoint (the pages already written).
"""

from __future__ import annotations

from rq.serializers import JSONSerializer
from rq.worker import Worker

from . import jobs
from .config import Settings
from .redisconn import connect


class CrawlWorker(Worker):
    def request_stop(self, signum, frame):
        if self.horse_pid:
            self.log.info("Worker %s: stopping; the running scan is requeued and resumes from its checkpoint", self.name)
            self.kill_horse()
        super().request_stop(signum, frame)


def run_crawl_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> None:
    connection = connect(settings.redis_url)
    CrawlWorker([jobs.CRAWL_QUEUE], connection=connection, serializer=JSONSerializer, name=name).work(burst=burst)
