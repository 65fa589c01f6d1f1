"""The combination rule: how evidence moves the verdict the pixel score's band gave.

The pixel score (``ai_probability``) and the evidence stay separate fields of a result;
only ``verdict`` and ``verdict_reason`` combine them:

1. A believed item of strength `proof` or `strong` that says `ai_generated` or `ai_edited`
   makes the verdict `ai`, its reason ``<source>:<reason>`` (``c2pa:ai_generated``). The
   strongest wins: proof before strong, generated before edited, then the order of SOURCES.
2. Otherwise a believed C2PA capture claim (a signed camera or phone, no AI action anywhere in
   its chain) keeps pixels alone from saying `ai`: that verdict becomes `uncertain`, reason
   ``capture_claim``. Any other band stands.
3. Otherwise the band decides, reason ``pixels`` (``region`` when the detector says its region evidence did).

Nothing turns a verdict to `real`: camera EXIF, software tags and unsigned capture source types
are weak, shown and never acted on; a C2PA store that failed validation is never believed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .items import SOURCES, Evidence

AI_REASONS = ("ai_generated", "ai_edited")


@dataclass(frozen=True)
class Decision:
    verdict: str
    verdict_reason: str


def combine(pixel_verdict: str, evidence: Sequence[Evidence], pixel_reason: str = "pixels") -> Decision:
    acting = [e for e in evidence if e.believed and e.strength in ("proof", "strong") and e.reason in AI_REASONS]
    if acting:
        best = min(acting, key=lambda e: (e.strength != "proof", AI_REASONS.index(e.reason), SOURCES.index(e.source)))
        return Decision("ai", f"{best.source}:{best.reason}")
    if pixel_verdict == "ai" and any(e.source == "c2pa" and e.believed and e.reason == "capture" for e in evidence):
        return Decision("uncertain", "capture_claim")
    return Decision(pixel_verdict, pixel_reason)


def without_private(result: dict) -> dict:
    """The result less every evidence item's ``private`` part (prompts, workflow text), for anything kept
    longer than the cached result itself (feedback)."""
    items = result.get("evidence")
    if not isinstance(items, list):
        return result
    return {**result, "evidence": [{k: v for k, v in item.items() if k != "private"} if isinstance(item, dict) else item
                                   for item in items]}


def annotate(result: dict, evidence: Sequence[Evidence]) -> dict:
    """A result (``Detector.result``'s fields) with the combined ``verdict``, its ``verdict_reason`` and the
    ``evidence`` items; ``ai_probability`` stays the pixel score."""
    decision = combine(result["verdict"], evidence, result.get("verdict_reason") or "pixels")
    rest = {k: v for k, v in result.items() if k != "ai_content"}  # after `evidence`, in the contract's field order
    return {**rest, "verdict": decision.verdict, "verdict_reason": decision.verdict_reason,
            "evidence": [item.to_dict() for item in evidence],
            **({"ai_content": result["ai_content"]} if "ai_content" in result else {})}
