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


class BlobStore:
    """Just enough Redis for ``prepare``: the upload's bytes under its key, no cached result."""

    def __init__(self, blobs: dict):
        self.blobs = blobs

    def get(self, key):
        return self.blobs.get(key)


def test_serving_decodes_a_large_jpeg_reduced_and_scores_it_as_a_full_decode():
    import io
    from pathlib import Path

    from PIL import Image

    from gamma_detect.runtime import load_detector
    from gamma_detect.server.decode import decode
    from gamma_detect.server.jobs import Context, predict_one, prepare

    detector = load_detector(threads=2)
    assets = Path(__file__).parent / "assets"
    for path in (assets / "photos" / "lake.jpg", assets / "ai" / "flux1.webp"):
        with Image.open(path) as image:   # a camera-sized JPEG: the asset enlarged to 2600 px on its long side
            scale = 2600 / max(image.size)
            big = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)),
                                              Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        big.save(buffer, "JPEG", quality=92)
        data = buffer.getvalue()
        ctx = Context(server_support.make_settings(), BlobStore({"blob:1": data}), detector=detector)
        prepared = prepare({"source": "upload", "blob": "blob:1"}, ctx, detector.policy.min_side)
        assert prepared.native == (big.height, big.width)
        assert prepared.rgb.shape[:2] == (big.height // 2, big.width // 2)   # DCT-reduced, as the policy allows
        served = predict_one(ctx, prepared)
        full = detector.predict([decode(data, max_pixels=10 ** 9)[0]])[0]
        assert abs(served.probability - full.probability) < 0.02
        edges = [band["max"] for band in detector.bands[:-1]]
        # The same band (and, under a staged policy, the same stages run), unless within the tolerance of an edge.
        if min(abs(full.probability - edge) for edge in edges) > 0.02:
            assert served.views == full.views
            assert detector.result(served)["verdict"] == detector.result(full)["verdict"]


def test_the_watermark_check_reuses_a_full_size_decode_and_decodes_itself_otherwise(monkeypatch):
    import dataclasses

    import gamma_detect.server.jobs as jobs
    from stub_detector import StubDetector, image_bytes

    given = []
    monkeypatch.setattr(jobs, "read_evidence", lambda data, config, rgb=None: given.append(rgb) or [])
    detector = StubDetector()
    blobs = {"png": image_bytes(300, 200, "PNG"), "small-jpeg": image_bytes(300, 200, "JPEG"),
             "big-jpeg": image_bytes(2000, 1500, "JPEG")}
    ctx = jobs.Context(server_support.make_settings(), BlobStore(blobs), detector=detector)
    for key in blobs:
        jobs.prepare({"source": "upload", "blob": key}, ctx, detector.min_side)
    assert [g.shape[:2] if g is not None else None for g in given] == [(200, 300), (200, 300), None]   # drafted
    ctx.evidence = dataclasses.replace(ctx.evidence, watermark_max_pixels=300 * 200 - 1)   # over the check's limit
    jobs.prepare({"source": "upload", "blob": "png"}, ctx, detector.min_side)
    assert given[-1] is None   # the reader decodes and refuses it itself, as for any file over its limit
