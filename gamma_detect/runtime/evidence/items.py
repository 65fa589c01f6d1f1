"""What the evidence reader returns: one typed, JSON-serialisable item per signal found.

An item says where it came from (``source``), whether it could be read and believed
(``status``), how much it is worth (``strength``) and what it says (``reason``). Prompt
and workflow text sit in ``private``: returned to the client that asked, kept out of
``repr`` so that logging an item never writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Where an item comes from.
# `metadata` and `file` carry only errors: a PNG over the text-chunk caps, a header Pillow cannot
# read (every metadata reader is skipped), a file over the byte cap (every reader is skipped).
SOURCES = ("c2pa", "xmp", "exif", "generator_parameters", "watermark", "metadata", "file")
# ok: read and consistent; invalid: read, but it failed its own validation (a C2PA
# signature or hash that does not match): shown, never believed; error: could not be read.
STATUSES = ("ok", "invalid", "error")
# proof: a valid C2PA claim whose signer chains to an operator-configured trust anchor;
# strong: a claim anybody could have written but nobody writes by accident;
# weak: shown, never acted on.
STRENGTHS = ("proof", "strong", "weak")
REASONS = ("ai_generated", "ai_edited", "capture", "camera_exif", "software", "other")
# Why one evidence item could not be read (``error``).
ERROR_CODES = (
    "file_too_large",         # more bytes than EvidenceConfig.max_bytes
    "png_malformed",          # a PNG chunk runs past the end of the file or has a bad length
    "png_too_many_chunks",    # more text chunks than EvidenceConfig.max_text_chunks
    "png_chunk_too_large",    # one text chunk over EvidenceConfig.max_text_chunk_bytes
    "xmp_too_large",          # an XMP packet over EvidenceConfig.max_xmp_bytes
    "xmp_malformed",          # not well-formed XML, or a DOCTYPE/ENTITY (XMP never has one)
    "metadata_unreadable",    # Pillow could not read the header of the file
    "c2pa_timeout",           # the C2PA reader ran past EvidenceConfig.c2pa_timeout_s
    "c2pa_failed",            # the C2PA reader failed or ran out of its memory limit
    "c2pa_unavailable",       # c2pa-python is not installed
    "watermark_failed",       # the pixels could not be decoded for the watermark check
)


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
