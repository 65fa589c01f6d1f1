"""Abstention: say `uncertain` when the evidence for an AI verdict is unstable.

One rule, used by the protocol that fits and measures it (train/loso.py) and by every
runtime (the Detector), so a calibrated promise means the same thing in both. It only
looks at images whose verdict would be `ai` or `likely_ai`: the promise it protects is
the false-positive rate on photos, and a second scoring pass is paid only there.

- ``view_spread``: the views of one image disagree when the standard deviation of their
  calibrated logits exceeds ``max_view_spread`` (one crop saying "generated" while the
  rest say "photo" is what subject matter and local processing produce).
- ``reencode_shift``: the image is re-encoded as JPEG at ``quality`` and scored again; a
  calibrated-logit drop larger than ``max_reencode_shift`` means the verdict rides on
  fragile high-frequency traces a mild re-encoding removes.

Thresholds are fitted at training time (nested, on the training sources) and stored in
the manifest under ``abstention``; this module only applies them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .contract import UNCERTAIN, UNCERTAIN_REASONS, VERDICTS

AI_SIDE = VERDICTS[VERDICTS.index(UNCERTAIN) + 1:]  # the bands above `uncertain` (likely_ai, ai): the rule acts there
VIEW_SPREAD, REENCODE_SHIFT = UNCERTAIN_REASONS


@dataclass(frozen=True)
class AbstentionRule:
    max_view_spread: float = float("inf")     # std of calibrated view logits
    max_reencode_shift: float = float("inf")  # calibrated logit (as given) minus calibrated logit (re-encoded)
    quality: int = 90

    def to_dict(self) -> dict:
        """As stored in a manifest: a check that is off (an infinite threshold) is null, so the file stays JSON."""
        return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict | None) -> "AbstentionRule":
        """The rule stored in a manifest; none stored means never abstain (older models), a null check is off."""
        if not data:
            return cls()
        off = float("inf")
        spread, shift = data["max_view_spread"], data["max_reencode_shift"]
        return cls(off if spread is None else float(spread), off if shift is None else float(shift),
                   int(data["quality"]))

    def reason(self, verdict: str, view_spread: float, reencode_shift: float | None = None) -> str | None:
        """Why this verdict becomes `uncertain`, or None to keep it.

        ``view_spread``: std of the image's calibrated view logits (:func:`view_spread`);
        ``reencode_shift``: calibrated logit as given minus after :func:`reencode_jpeg`, or None
        when not measured yet (only the view check runs then).
        """
        if verdict not in AI_SIDE:
            return None
        if view_spread > self.max_view_spread:
            return VIEW_SPREAD
        if reencode_shift is not None and reencode_shift > self.max_reencode_shift:
            return REENCODE_SHIFT
        return None

    @property
    def needs_reencode(self) -> bool:
        return np.isfinite(self.max_reencode_shift)


def view_spread(view_logits: np.ndarray) -> float:
    """How much the views of one image disagree: the std of their calibrated logits (0 for one view)."""
    return float(np.std(view_logits))


def reencode_jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    """An HxWx3 RGB image as JPEG at ``quality``, decoded again."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not JPEG-encode an image of shape {image.shape}")
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])
