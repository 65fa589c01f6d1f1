"""The batching worker: batches, RQ bookkeeping, a worker killed mid-batch, retries."""

import os
import signal
import subprocess
import sys
import time

import server_support
from server_support import backend, backend_with, image_server  # noqa: F401
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from stub_detector import image_bytes


def test_waiting_jobs_run_as_batches_and_complete_through_rq():
    b = backend_with(batch_size=4)
    try:
        b.publish_model()
        ids = [b.upload(image_bytes(seed=100 + i)).get_json()["job_id"] for i in range(6)]
        b.run_burst()
        assert b.detector.calls == [4, 2]
        results = [b.client.get(f"/jobs/{i}").get_json() for i in ids]
        assert all(r["status"] == "finished" for r in results)
        assert len({r["result"]["image"]["sha256"] for r in results}) == 6   # each job its own result
        assert [r["result"]["timings"]["batch_size"] for r in results] == [4, 4, 4, 4, 2, 2]
        finished = FinishedJobRegistry("inference", connection=b.connection, serializer=JSONSerializer)
        assert sorted(finished.get_job_ids()) == sorted(ids)
        assert StartedJobRegistry("inference", connection=b.connection).get_job_ids() == []
        job = Job.fetch(ids[0], connection=b.connection, serializer=JSONSerializer)
        assert job.latest_result().type.name == "SUCCESSFUL" and job.return_value()["cached"] is False
    finally:
        b.stop()
        server_support.delete_keys()


def test_jobs_arriving_within_the_wait_join_the_batch():
    b = backend_with(batch_size=8, batch_wait_ms=400)
    try:
        b.start_worker()
        ids = []
        for i in range(4):
            ids.append(b.upload(image_bytes(seed=200 + i)).get_json()["job_id"])
            time.sleep(0.05)
        sizes = [b.wait(job_id).get_json()["result"]["timings"]["batch_size"] for job_id in ids]
        assert sizes[0] >= 3, sizes
    finally:
        b.stop()
        server_support.delete_keys()


def test_one_bad_image_fails_alone(backend):
    backend.publish_model()
    good = backend.upload(image_bytes(seed=1)).get_json()["job_id"]
    data = image_bytes(300, 300, "JPEG", seed=2)
    bad = backend.upload(data[:2000]).get_json()["job_id"]
    backend.run_burst()
    assert backend.client.get(f"/jobs/{good}").get_json()["status"] == "finished"
    view = backend.client.get(f"/jobs/{bad}").get_json()
    assert view["status"] == "failed" and view["error"]["code"] == "image_decode_failed"
    failed = FailedJobRegistry("inference", connection=backend.connection, serializer=JSONSerializer)
    assert failed.get_job_ids() == [bad]
    assert not list(backend.connection.scan_iter(backend.settings.key("blob", "*")))


def test_large_jpegs_reach_the_detector_decoder_reduced_with_their_native_size(backend):
    backend.publish_model()
    detector = backend.context.get_detector()
    big, small = image_bytes(2000, 1500, "JPEG", seed=4), image_bytes(160, 120, "PNG", seed=5)
    jobs = [backend.upload(data).get_json()["job_id"] for data in (big, small)]
    backend.run_burst()
    assert [backend.client.get(f"/jobs/{j}").get_json()["status"] for j in jobs] == ["finished", "finished"]
    native, arrays = detector.natives[-1]
    assert native == [(1500, 2000), (120, 160)]
    # The policy works at half size (short side 1500 > 672, scale at least 0.5): the DCT's 1/2 scale is exactly it.
    assert detector.policy.working_size(1500, 2000) == (750, 1000) and arrays == [(750, 1000), (120, 160)]


def test_retries_for_fetch_failures_only(image_server):
    b = backend_with(fetch_test_allow=image_server.allow, fetch_retries=1)
    try:
        b.publish_model()
        calls = {"n": 0}

        def flaky(handler):   # 503 first, then the image
            calls["n"] += 1
            if calls["n"] == 1:
                handler.send_response(503)
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            body = image_bytes(seed=9)
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        image_server.add("/flaky.png", flaky)
        image_server.add("/text.png", b"not an image but served fine", headers={"Content-Type": "image/png"})
        flaky_job = b.client.post("/v1/analyze", json={"url": image_server.url("/flaky.png")}).get_json()["job_id"]
        text_job = b.client.post("/v1/analyze", json={"url": image_server.url("/text.png")}).get_json()["job_id"]
        b.start_worker()
        assert b.wait(text_job).get_json()["error"]["code"] == "unsupported_media_type"
        assert len([s for s in image_server.seen if s["path"] == "/text.png"]) == 1   # not retried
        assert b.wait(flaky_job, 30).get_json()["status"] == "finished"              # retried after backoff
        assert calls["n"] == 2
    finally:
        b.stop()
        server_support.delete_keys()


def _slow_worker(b, allow: str) -> subprocess.Popen:
    """`gamma worker` (one process) whose stub takes 20 s per image: a batch it starts stays started."""
    env = {**os.environ, "REDIS_URL": b.settings.redis_url, "GAMMA_REDIS_PREFIX": server_support.PREFIX,
           "RQ_KEY_PREFIX": server_support.PREFIX + ":rq", "GAMMA_DETECTOR": server_support.STUB,
           "GAMMA_STUB_DELAY_MS": "20000", "GAMMA_HEARTBEAT": "1", "GAMMA_HEARTBEAT_GRACE": "2",
           "GAMMA_BATCH_SIZE": "8", "GAMMA_BATCH_WAIT_MS": "300", "GAMMA_FETCH_TEST_ALLOW": allow,
           "GAMMA_LOG_LEVEL": "WARNING", "GAMMA_WORKERS": "1"}
    return subprocess.Popen([sys.executable, "-m", "gamma_detect.cli", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_outright(worker: subprocess.Popen) -> None:
    """The worker process itself dies, and its supervisor with it (else it would start another at once)."""
    spawned = server_support.worker_processes(worker.pid)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    for pid in spawned:
        os.kill(pid, signal.SIGKILL)


def test_worker_killed_mid_batch_leaves_no_job_started(image_server):
    """SIGKILL a `gamma worker` process mid-batch: each job fails (worker_lost) or is retried, visibly."""
    b = backend_with(fetch_test_allow=image_server.allow, heartbeat=1, heartbeat_grace=2)
    worker = None
    try:
        b.publish_model()
        uploads = [b.upload(image_bytes(seed=300 + i)).get_json()["job_id"] for i in range(3)]
        url = image_server.add("/retry-me.png", image_bytes(seed=399))
        with_retry = b.client.post("/v1/analyze", json={"url": url}).get_json()["job_id"]
        everything = uploads + [with_retry]
        worker = _slow_worker(b, image_server.allow)
        deadline = time.time() + 30
        while time.time() < deadline:
            if all(b.client.get(f"/jobs/{j}").get_json()["status"] == "started" for j in everything):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the worker did not start the batch")
        _kill_outright(worker)
        # Once heartbeat (1 s) + grace (2 s) have passed, looking at a job reaps it.
        server_support.eventually(lambda: all(b.client.get(f"/jobs/{j}").get_json()["status"] != "started"
                                              for j in everything), timeout=15, what="reaping the lost batch")
        views = {j: b.client.get(f"/jobs/{j}").get_json() for j in everything}
        for job_id in uploads:
            assert views[job_id]["status"] == "failed" and views[job_id]["error"]["code"] == "worker_lost"
        assert views[with_retry]["status"] == "queued"       # retries left: back in the queue
        assert StartedJobRegistry("inference", connection=b.connection).get_job_ids() == []
        assert not list(b.connection.scan_iter(b.settings.key("blob", "*")))   # bytes of ended jobs gone
        b.start_worker()                                      # a healthy worker finishes the retried one
        assert b.wait(with_retry, 30).get_json()["status"] == "finished"
    finally:
        if worker and worker.poll() is None:
            worker.kill()
        b.stop()
        server_support.delete_keys()


def test_a_scan_collector_met_while_filling_a_batch_goes_back_to_the_queue(image_server):
    """Found by bench/soak.py: a page's collector taken with a batch was held, off the queue but not started, until
    the batch ended; a worker killed mid-batch left it in RQ's intermediate queue, where no worker takes it and RQ
    fails it a minute later without an API error. It goes back to the front of the queue at once."""
    from rq.queue import Queue

    b = backend_with(fetch_test_allow=image_server.allow, heartbeat=1, heartbeat_grace=2)
    worker = None
    try:
        b.publish_model()
        first = b.upload(image_bytes(seed=380)).get_json()["job_id"]
        svc = b.app.extensions["gamma"]
        collector = svc.submit_scan(None, [{"url": "http://refused.invalid/x.png", "error": {"code": "url_not_allowed",
                                                                                      "message": "refused"}}])
        later = b.upload(image_bytes(seed=381)).get_json()["job_id"]
        worker = _slow_worker(b, image_server.allow)
        server_support.eventually(lambda: b.client.get(f"/jobs/{first}").get_json()["status"] == "started", 30,
                                  what="the first batch to start")
        queue = Queue("inference", connection=b.connection, serializer=JSONSerializer)
        server_support.eventually(lambda: queue.get_job_ids()[:2] == [collector, later], 10,
                                  what="the collector back at the front of the queue")
        _kill_outright(worker)
        assert collector not in [i.decode() for i in b.connection.lrange(queue.intermediate_queue_key, 0, -1)]
        b.start_worker()
        view = b.wait(collector, 30).get_json()
        assert view["status"] == "finished" and view["result"]["counts"] == {"failed": 1}, view
        assert b.wait(later, 30).get_json()["status"] == "finished"
    finally:
        if worker and worker.poll() is None:
            worker.kill()
        b.stop()
        server_support.delete_keys()


def test_reaped_by_a_live_worker_without_anyone_looking():
    b = backend_with(heartbeat=1, heartbeat_grace=1)
    try:
        b.publish_model()
        job_id = b.upload(image_bytes(seed=400)).get_json()["job_id"]
        # Simulate a worker that started the job and died: RQ bookkeeping, then nothing.
        from gamma_detect.server.worker import BatchWorker

        dead = BatchWorker(b.context, worker_ttl=16)
        dead.register_birth()
        job, queue = dead.queue_class.dequeue_any(dead.queues, None, connection=b.connection,
                                                 serializer=JSONSerializer)
        execution = dead.prepare_execution(job)
        dead.prepare_job_execution(job, remove_from_intermediate_queue=True)
        assert job.get_status(refresh=True).value == "started"
        del execution
        b.start_worker()   # its maintenance thread reaps within heartbeat + grace
        deadline = time.time() + 10
        while Job.fetch(job_id, connection=b.connection, serializer=JSONSerializer).get_status().value == "started":
            assert time.time() < deadline
            time.sleep(0.2)
        assert Job.fetch(job_id, connection=b.connection, serializer=JSONSerializer).get_status().value == "failed"
    finally:
        b.stop()
        server_support.delete_keys()


def test_cancel_a_started_job(monkeypatch):
    monkeypatch.setenv("GAMMA_STUB_DELAY_MS", "1500")
    b = backend_with()
    try:
        b.start_worker()
        job_id = b.upload(image_bytes(seed=500)).get_json()["job_id"]
        deadline = time.time() + 10
        while b.client.get(f"/jobs/{job_id}").get_json()["status"] != "started":
            assert time.time() < deadline
            time.sleep(0.05)
        canceled = b.client.delete(f"/jobs/{job_id}")
        assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
        # The batch ends (the worker goes idle): it saw the cancellation and dropped the job.
        from rq.worker import Worker

        server_support.eventually(lambda: all(w.get_state() == "idle" for w in Worker.all(connection=b.connection)),
                                  what="the worker finishing its batch")
        assert b.client.get(f"/jobs/{job_id}").get_json()["status"] == "canceled"
        assert StartedJobRegistry("inference", connection=b.connection).get_job_ids() == []
        assert b.client.delete(f"/jobs/{job_id}").status_code == 409
    finally:
        b.stop()
        server_support.delete_keys()


def test_a_cancel_landing_between_the_check_and_the_start_still_cancels(monkeypatch):
    """Found by bench/soak.py: a DELETE answered `canceled` between run_batch's status check and the start had
    `started` written over it, and the job then failed with internal_error (its upload already deleted)."""
    from gamma_detect.server.worker import BatchWorker

    b = backend_with()
    try:
        b.publish_model()
        job_id = b.upload(image_bytes(seed=650)).get_json()["job_id"]
        start = BatchWorker.prepare_execution

        def cancel_first(self, job):   # the client's DELETE arrives just after the worker looked
            assert b.client.delete(f"/jobs/{job.id}").get_json()["status"] == "canceled"
            return start(self, job)
        monkeypatch.setattr(BatchWorker, "prepare_execution", cancel_first)
        b.run_burst()
        view = b.client.get(f"/jobs/{job_id}").get_json()
        assert view["status"] == "canceled", view
        assert StartedJobRegistry("inference", connection=b.connection).get_job_ids() == []
        assert b.detector.calls == []   # nothing was scored
    finally:
        b.stop()
        server_support.delete_keys()


def test_job_timeout(monkeypatch):
    monkeypatch.setenv("GAMMA_STUB_DELAY_MS", "2500")
    b = backend_with(job_timeout=1)
    try:
        b.publish_model()
        job_id = b.upload(image_bytes(seed=600)).get_json()["job_id"]
        b.run_burst()
        view = b.client.get(f"/jobs/{job_id}").get_json()
        assert view["status"] == "failed" and view["error"]["code"] == "job_timeout"
    finally:
        b.stop()
        server_support.delete_keys()
