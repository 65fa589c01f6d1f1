"""Errors with a stable ``code`` (part of the API: never renamed) and an HTTP status."""

from __future__ import annotations

# code -> (HTTP status, default message)
CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "the request is malformed"),
    "unauthorized": (401, "a valid API key is required (Authorization: Bearer <key>)"),
    "not_found": (404, "no such resource (unknown or expired)"),
    "method_not_allowed": (405, "method not allowed"),
    "conflict": (409, "the job has already ended"),
    "payload_too_large": (413, "the image is larger than the byte limit"),
    "unsupported_media_type": (415, "not an image in a supported format"),
    "image_decode_failed": (422, "the image could not be decoded"),
    "image_too_large": (422, "the image has more pixels than allowed"),
    "image_too_small": (422, "the image is too small to analyse"),
    "url_not_allowed": (422, "the URL is not allowed"),
    "fetch_failed": (502, "the image could not be fetched"),
    "rate_limited": (429, "too many requests"),
    "worker_lost": (500, "the worker running the job stopped before finishing it"),
    "job_timeout": (504, "the job ran past its time limit"),
    "internal_error": (500, "internal error"),
    "service_unavailable": (503, "the service is temporarily unavailable"),
}


class ApiError(Exception):
    """An error the API reports as ``{"error": {"code", "message"}}``."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 retry_after: float | None = None, retryable: bool = False):
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        default_status, default_message = CODES[code]
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.status = status or default_status
        self.retry_after = retry_after
        self.retryable = retryable  # jobs: worth retrying (transient fetch failures only)

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}

    def __reduce__(self):  # picklable for completeness (RQ runs with the JSON serializer)
        return (_rebuild, (self.code, self.message, self.status, self.retry_after, self.retryable))


def _rebuild(code, message, status, retry_after, retryable):
    return ApiError(code, message, status=status, retry_after=retry_after, retryable=retryable)
