"""The HTTP service: Flask API, RQ jobs and a batching worker over the runtime.

Nothing here imports torch or ``train/``. RQ reads its key prefix from the
environment once, when it is first imported; this module sets it from
``GAMMA_REDIS_PREFIX`` before any of the server's modules import RQ, so the API,
the workers and the CLI agree on every Redis key.
"""

from __future__ import annotations

import os
import sys


def _rq_key_prefix() -> str:
    return os.environ.get("GAMMA_REDIS_PREFIX", "gamma").rstrip(":") + ":rq"


def _configure_rq() -> None:
    wanted = os.environ.setdefault("RQ_KEY_PREFIX", _rq_key_prefix())
    if "rq" in sys.modules:  # imported before us: make sure it took the same prefix
        from rq.defaults import RQ_KEY_PREFIX

        if RQ_KEY_PREFIX != wanted:
            raise RuntimeError(
                f"rq was imported with key prefix {RQ_KEY_PREFIX!r} before gamma_detect.server "
                f"could set {wanted!r}; import gamma_detect.server first or set RQ_KEY_PREFIX"
            )


_configure_rq()
