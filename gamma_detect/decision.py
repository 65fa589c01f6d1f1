"""The image decision a manifest prescribes: how view scores and region evidence become one score.

A manifest's ``decision`` section names the rule's inputs (``features``), its weights, bias and band
edges; ``mask_calibration`` the head-1 map's fitted level. The training protocol (``train/fusion_loso.py``)
fits and measures exactly these objects, so every runtime that reads the manifest scores as measured.

Inputs, per image, from the views that ran (every stage that ran, or stage 0 alone when deciding whether to
refine):

- ``mean_logit``: the mean view logit (the graphs' calibrated view probabilities p_i: mean(logit(p_i)));
- ``max_view_logit``: the worst (most AI-like) view's logit;
- ``mask_top_logit``: logit of the mean of the top ``top_share`` of the raw head-1 map's pixels;
- ``mask_peak_logit``: logit of the raw head-1 map's maximum;
- ``generated_share_logit``: logit of the mean head-2 probability of `generated` + `inpainted`;
- ``mask_contrast_logit``: ``mask_top_logit`` minus the logit of the map's median: how far the hottest part stands
  out from the image's own level (a source whose maps run hot everywhere raises both).

Maps are stitched at ``map_side`` px (the policy's stitching). The section's ``rule``:

- ``logistic_fusion`` (``Decision``): the fused score is ``sigmoid(bias + sum_k weights_k * feature_k)``; the
  verdict bands are over it.
- ``either`` (``Either``): a whole-image ``logistic_fusion`` gives every band, and a region fusion, fitted on local
  edits against photos, may raise the verdict: where its logit reaches its own `ai` edge, the image logit becomes
  the larger of the whole rule's and the region's shifted onto the whole rule's `ai` edge. A photo with an
  AI-edited region thus reaches `ai` without the region evidence moving any whole image's score. A region rule
  with a finite `likely_ai` edge (under its `ai` edge) may raise to `likely_ai` too: between its two edges its
  logit maps linearly onto the whole rule's `likely_ai`..`ai` span.

A manifest without a ``decision`` scores by the mean view logit alone (as 0.3.0 did).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .contract import SOURCE_CLASSES
from .crops import CropPlan, CropPolicy

EVIDENCE = ("mask_top_logit", "mask_peak_logit", "generated_share_logit", "mask_contrast_logit")
VIEW_FEATURES = ("mean_logit", "max_view_logit")
FEATURES = VIEW_FEATURES + EVIDENCE
EVIDENCE_EPS = 1e-4
REGION_CLASSES = ("generated", "inpainted")


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EVIDENCE_EPS, 1 - EVIDENCE_EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class MaskCalibration:
    """The head-1 map's calibration: p' = sigmoid((logit(p) - bias) / temperature), so 0.5 stays the level."""
    bias: float = 0.0
    temperature: float = 1.0

    @classmethod
    def at_level(cls, level: float) -> "MaskCalibration":
        """The calibration whose 0.5 is the raw map's ``level``."""
        return cls(float(_logit(level)))

    @property
    def level(self) -> float:
        return float(1 / (1 + np.exp(-self.bias)))

    def apply(self, mask: np.ndarray) -> np.ndarray:
        if self.bias == 0.0 and self.temperature == 1.0:
            return mask
        z = (_logit(mask) - self.bias) / self.temperature
        return (1 / (1 + np.exp(-z))).astype(np.float32)

    def to_dict(self) -> dict:
        return {"bias": self.bias, "temperature": self.temperature, "level": self.level,
                "formula": "sigmoid((logit(p) - bias) / temperature), p the raw head-1 probability clipped to "
                           f"[{EVIDENCE_EPS}, 1 - {EVIDENCE_EPS}]"}

    @classmethod
    def from_dict(cls, data: dict | None) -> "MaskCalibration":
        if not data:
            return cls()
        return cls(float(data["bias"]), float(data.get("temperature", 1.0)))


@dataclass(frozen=True)
class Decision:
    name: str
    features: tuple[str, ...]
    weights: np.ndarray
    bias: float
    likely_ai_edge: float          # fused logit where `likely_ai` starts
    ai_edge: float
    map_side: int = 128
    top_share: float = 0.05

    def __post_init__(self) -> None:
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or len(self.features) != len(self.weights):
            raise ValueError(f"decision {self.name!r}: features {list(self.features)} must be among {list(FEATURES)}, "
                             f"one weight each (got {len(self.weights)} weights)")

    @classmethod
    def empty(cls) -> "Decision":
        """The mean view logit alone (a manifest without a ``decision``)."""
        return cls("global", ("mean_logit",), np.array([1.0]), 0.0, -np.inf, np.inf)

    @property
    def uses_regions(self) -> bool:
        return any(f in EVIDENCE for f in self.features)

    @property
    def likely_band(self) -> bool:
        """A `likely_ai` band of its own: both edges finite, `likely_ai`'s under `ai`'s."""
        return bool(-np.inf < self.likely_ai_edge < self.ai_edge < np.inf)

    @property
    def plain(self) -> bool:
        """The mean view logit alone: the image score is the views' combined probability."""
        return self.features == ("mean_logit",) and float(self.weights[0]) == 1.0 and self.bias == 0.0

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Fused logits of rows ``x`` (columns in ``features`` order)."""
        return np.asarray(x, np.float64) @ np.asarray(self.weights, np.float64) + self.bias

    def score(self, view_logits: np.ndarray, evidence: Sequence[float] | None) -> float:
        """The image's fused logit from its view logits and ``region_evidence`` values."""
        return float(self.logit(features_of(self, view_logits, evidence)[None])[0])

    def to_dict(self) -> dict:
        return {"rule": "logistic_fusion", "name": self.name, "features": list(self.features),
                "weights": [float(w) for w in self.weights], "bias": self.bias,
                "likely_ai_edge_logit": self.likely_ai_edge, "ai_edge_logit": self.ai_edge,
                "map_side": self.map_side, "top_share": self.top_share,
                "formula": "sigmoid(bias + sum_k weights_k * features_k); features defined in "
                           "gamma_detect/decision.py, computed from the views that ran (stage 0 alone when "
                           "deciding whether to refine); verdict_bands are over this probability"}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Decision":
        if not data:
            return cls.empty()
        if data.get("rule") != "logistic_fusion":
            raise ValueError(f"decision rule {data.get('rule')!r} is not a logistic_fusion")
        return cls(str(data.get("name", "fusion")), tuple(data["features"]), np.array(data["weights"], np.float64),
                   float(data["bias"]), float(data.get("likely_ai_edge_logit", -np.inf)),
                   float(data.get("ai_edge_logit", np.inf)), int(data.get("map_side", 128)),
                   float(data.get("top_share", 0.05)))


@dataclass(frozen=True)
class Either:
    """Two rules: ``whole`` gives every band; ``region`` may raise the verdict to `ai` (its ``ai_edge``) and, where
    its ``likely_ai_edge`` is finite and under its ``ai_edge``, to `likely_ai`."""
    whole: Decision
    region: Decision
    name: str = "either"

    def __post_init__(self) -> None:
        if not np.isfinite(self.region.ai_edge):
            raise ValueError(f"decision {self.name!r}: the region rule needs a finite ai edge, got {self.region.ai_edge}")
        if (self.whole.map_side, self.whole.top_share) != (self.region.map_side, self.region.top_share):
            raise ValueError(f"decision {self.name!r}: both rules must read the same maps (map_side, top_share)")
        if self.region_likely and not self.whole.likely_band:
            raise ValueError(f"decision {self.name!r}: a region `likely_ai` edge needs the whole rule's `likely_ai` "
                             f"band (likely_ai_edge < ai_edge), got {self.whole.likely_ai_edge} and {self.whole.ai_edge}")

    likely_ai_edge = property(lambda self: self.whole.likely_ai_edge)   # the bands are the whole rule's
    ai_edge = property(lambda self: self.whole.ai_edge)
    map_side = property(lambda self: self.region.map_side)
    top_share = property(lambda self: self.region.top_share)

    @property
    def uses_regions(self) -> bool:
        return self.whole.uses_regions or self.region.uses_regions

    @property
    def region_likely(self) -> bool:
        """The region rule raises to `likely_ai` too (0.6.0's raises to `ai` alone and writes no such edge)."""
        return self.region.likely_band

    plain = False

    def combine(self, whole: np.ndarray, region: np.ndarray) -> np.ndarray:
        """Image logits from the two rules' logits: the whole rule's, raised to the region's where the region
        reaches its first edge: over its `ai` edge shifted onto the whole rule's, between its `likely_ai` and `ai`
        edges mapped linearly onto the whole rule's; under its first edge the region changes nothing."""
        w, r = self.whole, self.region
        whole, region = np.asarray(whole, np.float64), np.asarray(region, np.float64)
        raised, start = w.ai_edge + region - r.ai_edge, r.ai_edge
        if self.region_likely:
            span = (w.ai_edge - w.likely_ai_edge) / (r.ai_edge - r.likely_ai_edge)
            raised = np.where(region >= r.ai_edge, raised, w.likely_ai_edge + (region - r.likely_ai_edge) * span)
            start = r.likely_ai_edge
        return np.where(region >= start, np.maximum(whole, raised), whole)

    def score(self, view_logits: np.ndarray, evidence: Sequence[float] | None) -> float:
        return float(self.combine(self.whole.score(view_logits, evidence), self.region.score(view_logits, evidence)))

    def to_dict(self) -> dict:
        drop = ("formula",) if self.region_likely else ("likely_ai_edge_logit", "formula")
        region = {k: v for k, v in self.region.to_dict().items() if k not in drop}
        formula = ("z_whole, z_region: the two logistic fusions; z = z_whole where z_region < region.ai_edge_logit, "
                   "else max(z_whole, whole.ai_edge_logit + z_region - region.ai_edge_logit)")
        if self.region_likely:
            formula += ("; where region.likely_ai_edge_logit <= z_region < region.ai_edge_logit, z = max(z_whole, "
                        "whole.likely_ai_edge_logit + (z_region - region.likely_ai_edge_logit) * (whole.ai_edge_logit "
                        "- whole.likely_ai_edge_logit) / (region.ai_edge_logit - region.likely_ai_edge_logit))")
        return {"rule": "either", "name": self.name, "whole": self.whole.to_dict(), "region": region,
                "formula": formula + "; the image probability sigmoid(z), verdict_bands over it"}

    @classmethod
    def from_dict(cls, data: dict) -> "Either":
        if not isinstance(data.get("whole"), dict) or not isinstance(data.get("region"), dict):
            raise ValueError("decision rule 'either' needs its two rules, 'whole' and 'region' (logistic fusions)")
        return cls(Decision.from_dict(data["whole"]), Decision.from_dict(data["region"]),
                   str(data.get("name", "either")))


RULES = {"logistic_fusion": Decision, "either": Either}


def read_decision(data: dict | None) -> Decision | Either:
    """A manifest's ``decision`` section (none: the mean view logit alone)."""
    if not data:
        return Decision.empty()
    rule = RULES.get(data.get("rule"))
    if rule is None:
        raise ValueError(f"unknown decision rule {data.get('rule')!r}; this runtime knows {sorted(RULES)}: "
                         f"upgrade gamma-detect to read this model")
    return rule.from_dict(data)


def region_evidence(policy: CropPolicy, plan: CropPlan, masks: np.ndarray, sources: np.ndarray,
                    decision: Decision | Either) -> tuple[np.ndarray, np.ndarray]:
    """(EVIDENCE values, the stitched raw head-1 map at ``map_side``) from the views that ran: ``masks`` (N, M, M)
    and ``sources`` (N, C, M, M) in stitching order."""
    mask = policy.stitch(masks, plan, max_side=decision.map_side)
    flat = np.sort(mask.ravel())
    top = flat[-max(1, int(round(decision.top_share * flat.size))):]
    shares = policy.stitch(np.moveaxis(sources, 1, -1), plan, max_side=decision.map_side)
    region = shares[..., [SOURCE_CLASSES.index(c) for c in REGION_CLASSES]].sum(-1).mean()
    top_logit, peak_logit, region_logit, median_logit = _logit([top.mean(), flat[-1], region, np.median(flat)])
    return np.array([top_logit, peak_logit, region_logit, top_logit - median_logit]), mask


def view_features(view_logits: np.ndarray) -> np.ndarray:
    return np.array([float(np.mean(view_logits)), float(np.max(view_logits))])


def features_of(decision: Decision, view_logits: np.ndarray, evidence: Sequence[float] | None) -> np.ndarray:
    """The decision's inputs, in its ``features`` order."""
    values = dict(zip(VIEW_FEATURES, view_features(view_logits)))
    if evidence is not None:
        values.update(zip(EVIDENCE, evidence))
    return np.array([values[f] for f in decision.features])


def strongest_region(mask: np.ndarray, level: float = 0.5) -> dict | None:
    """The calibrated head-1 map's strongest region above ``level`` (the connected part with the most mass):
    its box as fractions of the map's width and height [left, top, right, bottom] and its share of the image;
    None when no pixel stands out ("no region stands out")."""
    import cv2

    above = (np.asarray(mask) > level).astype(np.uint8)
    if not above.any():
        return None
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    mass = np.bincount(labels.ravel(), weights=np.asarray(mask, np.float64).ravel(), minlength=count)[1:]
    best = int(np.argmax(mass)) + 1
    x, y, w, h, area = (int(v) for v in stats[best])
    height, width = above.shape
    return {"box": [round(x / width, 4), round(y / height, 4), round((x + w) / width, 4), round((y + h) / height, 4)],
            "share": round(area / above.size, 4)}
