"""IPTC Digital Source Type terms (https://cv.iptc.org/newscodes/digitalsourcetype/), as C2PA and XMP both use them."""

from __future__ import annotations

AI_GENERATED = frozenset({"trainedAlgorithmicMedia"})
# Part of the image made by a model: an AI fill, an AI element composited into a photo.
AI_EDITED = frozenset({"compositeWithTrainedAlgorithmicMedia"})
CAPTURE = frozenset({"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print"})


def term(value: str) -> str:
    """The bare term of a source type, whether written as a full IPTC URI (http or https) or alone."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1]


def reason(value: str) -> str:
    """`ai_generated`, `ai_edited`, `capture` or `other` for one source type."""
    name = term(value)
    if name in AI_GENERATED:
        return "ai_generated"
    if name in AI_EDITED:
        return "ai_edited"
    return "capture" if name in CAPTURE else "other"
