"""Job failures are classified by exception type, never by the text of a traceback."""

from __future__ import annotations

import server_support  # noqa: F401  (sets the test key prefixes before RQ is imported)

from rq.exceptions import AbandonedJobError  # noqa: E402
from rq.timeouts import JobTimeoutException  # noqa: E402

from gamma_detect.server.errors import ApiError  # noqa: E402
from gamma_detect.server.jobs import api_error, job_error  # noqa: E402


class FakeJob:
    def __init__(self, meta=None):
        self.meta = meta if meta is not None else {}


def test_api_error_by_exception_type():
    fetch = ApiError("fetch_failed", "HTTP 503", retryable=True)
    assert api_error(fetch) is fetch
    assert api_error(AbandonedJobError()).code == "worker_lost"
    assert api_error(JobTimeoutException("ran past 1 s")).code == "job_timeout"
    # A message that mentions retries or timeouts is still an internal error: only the type counts.
    assert api_error(RuntimeError("Retry: max retries exceeded, JobTimeoutException")).code == "internal_error"
    assert api_error(None).code == "internal_error"


def test_job_error_reads_what_the_failure_callback_recorded():
    assert job_error(FakeJob({"error": {"code": "image_too_small", "message": "too small"}}))["code"] == \
        "image_too_small"
    assert job_error(FakeJob())["code"] == "internal_error"
    assert job_error(FakeJob({"error": "not a dict"}))["code"] == "internal_error"
