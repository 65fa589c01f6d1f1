"""User feedback ("this verdict was wrong"): kept durably in a Redis stream for review.

Why a stream: append-only, ordered, cheap, and it lives in the Redis that already runs with
append-only persistence (the embedded one and the compose file both enable it), so it needs no
second datastore. Entries never expire: feedback keeps what the user sent. `gamma feedback
export` writes them out as JSONL (and can resume after a given entry id).
"""

from __future__ import annotations

import json
import re
import time
from typing import IO, Iterator

from gamma_detect.contract import FEEDBACK_LABELS, LIMITS
from gamma_detect.runtime.evidence import without_private

from .config import Settings
from .errors import ApiError

_SHA256 = re.compile(r"[0-9a-f]{64}")   # fullmatch: "$" would let a final newline through
MAX_NOTE = LIMITS["feedback_note_chars"]
MAX_RESULT_BYTES = LIMITS["feedback_result_bytes"]


def validate(body) -> dict:
    if not isinstance(body, dict):
        raise ApiError("bad_request", "send a JSON object")
    sha = body.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha.lower()):
        raise ApiError("bad_request", "`sha256` must be the image's SHA-256 as 64 hex digits")
    label = body.get("label")
    if label not in FEEDBACK_LABELS:
        raise ApiError("bad_request", f"`label` must be one of {', '.join(FEEDBACK_LABELS)}")
    result = body.get("result")
    if not isinstance(result, dict):
        raise ApiError("bad_request", "`result` must be the result object the user disagrees with")
    # Prompts found in the image's metadata were the asker's alone: feedback is kept for good, they are not.
    encoded = json.dumps(without_private(result), separators=(",", ":"))
    if len(encoded) > MAX_RESULT_BYTES:
        raise ApiError("bad_request", "`result` is too large")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise ApiError("bad_request", f"`note` must be text of at most {MAX_NOTE} characters")
    return {"sha256": sha.lower(), "label": label, "result": encoded, "note": note or ""}


def stream_key(settings: Settings) -> str:
    return settings.key("feedback")


def add(connection, settings: Settings, entry: dict, key_id: str | None) -> str:
    fields = dict(entry, key_id=key_id or "", received_at=f"{time.time():.3f}")
    entry_id = connection.xadd(stream_key(settings), fields)
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def iterate(connection, settings: Settings, after: str = "-", page: int = 500) -> Iterator[dict]:
    start = after if after == "-" else f"({after}"
    while True:
        entries = connection.xrange(stream_key(settings), min=start, max="+", count=page)
        if not entries:
            return
        for entry_id, fields in entries:
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            data = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                    for k, v in fields.items()}
            yield {"id": entry_id, "sha256": data.get("sha256"), "label": data.get("label"),
                   "note": data.get("note") or None, "result": json.loads(data.get("result") or "null"),
                   "key_id": data.get("key_id") or None, "received_at": float(data.get("received_at") or 0)}
        start = f"({entry_id}"


def export(connection, settings: Settings, out: IO[str], after: str = "-") -> int:
    count = 0
    for record in iterate(connection, settings, after):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
