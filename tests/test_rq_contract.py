"""The RQ internals the batching worker relies on: fails loudly, naming each one, when an RQ upgrade changes them."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import server_support  # noqa: F401  (sets the test key prefixes before RQ is imported)
from server_support import redis_url

import rq  # noqa: E402
from rq.queue import Queue  # noqa: E402
from rq.worker import SimpleWorker  # noqa: E402

from gamma_detect.server.worker import RQ_PRIVATE  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# What each private method is called with in server/worker.py (parameter names after self).
SIGNATURES = {
    "Worker._finalize_success": ["job", "queue", "execution", "return_value"],
    "Worker._finalize_failure": ["job", "queue", "execution", "exc_info"],
}
ATTRIBUTES = {"Worker._shutdown_requested_date": None}


def pinned_minor() -> str:
    match = re.search(r'"rq==(\d+\.\d+)\.\*"', (REPO / "pyproject.toml").read_text())
    assert match, "pyproject.toml must pin rq to one minor release (rq==X.Y.*): the worker uses its internals"
    return match.group(1)


def test_installed_rq_is_the_pinned_minor():
    installed = version("rq")
    assert installed.startswith(pinned_minor() + "."), (
        f"RQ {installed} is installed but server/worker.py was checked against {pinned_minor()}.*: check every "
        f"entry of RQ_PRIVATE ({', '.join(RQ_PRIVATE)}) against the new RQ, then move the pin")
    assert rq.__version__ == installed


def fresh_worker() -> SimpleWorker:
    import redis

    connection = redis.Redis.from_url(redis_url())
    return SimpleWorker([Queue("gamma-contract", connection=connection)], connection=connection)


def test_every_private_name_is_listed_and_checked():
    """Every `_name` server/worker.py uses or overrides that RQ's worker also has is an RQ internal: listed."""
    source = (REPO / "server" / "worker.py").read_text()
    names = set(re.findall(r"\.(_[a-z]\w*)", source)) | set(re.findall(r"def (_[a-z]\w*)", source))
    worker = fresh_worker()
    internals = {n for n in names if hasattr(SimpleWorker, n) or hasattr(worker, n)}
    listed = {key.split(".", 1)[1] for key in RQ_PRIVATE}
    assert internals == listed, f"RQ internals used but not in RQ_PRIVATE: {sorted(internals - listed)}; " \
                                f"listed but unused: {sorted(listed - internals)}"
    assert set(RQ_PRIVATE) == set(SIGNATURES) | set(ATTRIBUTES)


def test_private_methods_keep_their_signatures():
    for key, params in SIGNATURES.items():
        method = getattr(SimpleWorker, key.split(".", 1)[1], None)
        assert callable(method), f"RQ no longer has {key} (server/worker.py: {RQ_PRIVATE[key]})"
        got = [p for p in inspect.signature(method).parameters if p != "self"]
        assert got == params, f"{key} now takes {got}, server/worker.py calls it with {params}"


def test_private_attributes_exist_on_a_new_worker():
    worker = fresh_worker()
    for key, initial in ATTRIBUTES.items():
        name = key.split(".", 1)[1]
        assert hasattr(worker, name), f"RQ workers no longer have {key} (server/worker.py: {RQ_PRIVATE[key]})"
        assert getattr(worker, name) == initial, f"{key} starts as {getattr(worker, name)!r}, not {initial!r}"


def test_public_dequeue_keeps_its_signature():
    params = list(inspect.signature(Queue.dequeue_any).parameters)
    assert params[:3] == ["queues", "timeout", "connection"] and \
        {"job_class", "serializer", "death_penalty_class"} <= set(params)
