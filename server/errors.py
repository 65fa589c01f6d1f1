"""The API's errors: a stable ``code`` from the contract (never renamed), its HTTP status and a message.

Every error response body is the flat JSON object ``{"code": "...", "message": "..."}``
(:meth:`ApiError.to_dict`); codes, statuses and default messages are
``gamma_detect.contract.ERRORS``.
"""

from __future__ import annotations

from gamma_detect.contract import ERRORS

class ApiError(Exception):
    """An error the API reports as the flat ``{"code", "message"}`` with the code's HTTP status."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 retry_after: float | None = None, retryable: bool = False):
        if code not in ERRORS:
            raise ValueError(f"unknown error code {code!r}; add it to gamma_detect.contract.ERRORS")
        default_status, default_message = ERRORS[code].status, ERRORS[code].message
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
