"""What the evidence reader returns: one typed, JSON-serialisable item per signal found.

An item says where it came from (``source``), whether it could be read and believed
(``status``), how much it is worth (``strength``) and what it says (``reason``). Prompt
and workflow text sit in ``private``: returned to the client that asked, kept out of
``repr`` so that logging an item never writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...contract import EVIDENCE_ERRORS, EVIDENCE_REASONS, EVIDENCE_SOURCES, EVIDENCE_STATUSES, EVIDENCE_STRENGTHS

# The vocabulary is the cross-layer contract's (the OpenAPI document and the extension read it too).
# proof: a valid C2PA claim whose signer chains to an operator-configured trust anchor;
# strong: a claim anybody could have written but nobody writes by accident; weak: shown, never acted on.
# Error codes: file_too_large (over EvidenceConfig.max_bytes), png_malformed (a chunk runs past the end),
# png_too_many_chunks / png_chunk_too_large (text-chunk caps), xmp_too_large, xmp_malformed (not XML, or
# a DOCTYPE/ENTITY), metadata_unreadable (Pillow cannot read the header), c2pa_timeout, c2pa_failed (the
# reader failed or hit its memory limit), c2pa_unavailable (not installed), watermark_failed.
SOURCES, STATUSES, STRENGTHS, REASONS = EVIDENCE_SOURCES, EVIDENCE_STATUSES, EVIDENCE_STRENGTHS, EVIDENCE_REASONS
ERROR_CODES = EVIDENCE_ERRORS


class EvidenceError(Exception):
    """One evidence reader could not read its signal; ``code`` is one of ``ERROR_CODES``."""

    def __init__(self, code: str, message: str):
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Evidence:
    source: str
    status: str
    strength: str | None = None        # None unless status == "ok" or "invalid"
    reason: str | None = None          # what the item says (a failed C2PA claim still says it)
    summary: str = ""                  # one line for people ("Content Credentials: made with ...")
    details: dict[str, Any] = field(default_factory=dict)
    private: dict[str, Any] = field(default_factory=dict, repr=False)   # prompts, workflow text
    error: str | None = None           # one of ERROR_CODES when status == "error"

    def __post_init__(self) -> None:
        assert self.source in SOURCES and self.status in STATUSES, (self.source, self.status)
        assert self.strength is None or self.strength in STRENGTHS, self.strength
        assert self.reason is None or self.reason in REASONS, self.reason

    @property
    def believed(self) -> bool:
        """Whether the combination rule may act on this item."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "strength": self.strength, "reason": self.reason,
                "summary": self.summary, "details": self.details, "private": self.private, "error": self.error}

    @classmethod
    def failed(cls, source: str, error: EvidenceError) -> "Evidence":
        return cls(source=source, status="error", summary=str(error), error=error.code)
