"""Abstention: the rule (gamma_detect/abstain.py) and the Detector applying it as the protocol does."""

from __future__ import annotations

import numpy as np
import pytest

from gamma_detect.abstain import AbstentionRule, reencode_jpeg, view_spread
from gamma_detect.crops import CropPolicy
from gamma_detect.runtime import Detector
from gamma_detect.runtime.manifest import Artifact, Manifest
from gamma_detect.train.calibrate import bands_from_edges

POLICY = CropPolicy(input_size=96, work_side=192, min_side=32)
ENTRY = {"file": "model.onnx", "variant": "fp32", "format": "onnx", "sha256": "0" * 64}


class ScriptedSession:
    """Per-view probabilities from a function of the view; records how many views each call held."""
    max_batch = 64

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def run(self, views):
        self.calls.append(len(views))
        n, m = len(views), POLICY.input_size // 8
        return (np.array([self.fn(v) for v in views], np.float32), np.zeros((n, m, m), np.float32),
                np.full((n, 5, m, m), 0.2, np.float32))


def _detector(fn, rule: AbstentionRule | None) -> Detector:
    raw = {"model": {"name": "scripted", "version": "0"}, "crop_policy": POLICY.to_dict(),
           "verdict_bands": bands_from_edges(0.6, 0.8),
           "source_classes": ["authentic", "generated", "inpainted", "copy_moved", "spliced"], "artifacts": [ENTRY],
           **({"abstention": rule.to_dict()} if rule else {})}
    return Detector(Manifest.from_dict(raw, "."), Artifact.from_entry(ENTRY), ScriptedSession(fn), "scripted")


def test_rule_only_touches_ai_side_verdicts():
    rule = AbstentionRule(max_view_spread=0.5, max_reencode_shift=1.0)
    assert rule.reason("real", 9.0, 9.0) is None and rule.reason("uncertain", 9.0) is None
    assert rule.reason("ai", 0.6) == "view_spread"
    assert rule.reason("likely_ai", 0.1, 1.5) == "reencode_shift"
    assert rule.reason("ai", 0.1, 0.5) is None and rule.reason("ai", 0.1) is None
    assert AbstentionRule.from_dict(None) == AbstentionRule() and not AbstentionRule().needs_reencode
    assert AbstentionRule.from_dict(rule.to_dict()) == rule
    assert view_spread(np.array([1.0])) == 0.0


def test_views_that_disagree_make_an_ai_score_uncertain():
    image = np.zeros((96, 288, 3), np.uint8)
    image[:, 144:] = 255  # the right crop white, the left black: the views disagree
    bright = lambda v: 0.999 if v.mean() > 200 else 0.7  # noqa: E731
    kept = _detector(bright, None)
    p = kept.predict([image])[0]
    assert kept.result(p)["verdict"] in ("likely_ai", "ai") and kept.result(p)["uncertain_reason"] is None
    strict = _detector(bright, AbstentionRule(max_view_spread=0.5))
    p = strict.predict([image])[0]
    assert p.view_spread > 0.5
    assert strict.result(p)["verdict"] == "uncertain" and strict.result(p)["uncertain_reason"] == "view_spread"
    assert strict.result(p)["ai_probability"] == kept.result(kept.predict([image])[0])["ai_probability"]


def test_a_score_that_a_jpeg_q90_copy_loses_is_uncertain_and_only_ai_side_images_are_rescored():
    rng = np.random.default_rng(0)
    fragile = (rng.integers(0, 128, (96, 96, 3)) * 2).astype(np.uint8)  # every value even
    assert (reencode_jpeg(fragile) % 2).any()  # a JPEG copy is not
    flat = np.full((96, 96, 3), 128, np.uint8)
    assert (reencode_jpeg(flat) == 128).all()
    real = fragile + 1  # odd values: scored low, never rechecked
    even = lambda v: 0.95 if not (v % 2).any() else 0.1  # noqa: E731
    detector = _detector(even, AbstentionRule(max_view_spread=5.0, max_reencode_shift=1.0))
    out = [detector.result(p) for p in detector.predict([fragile, flat, real])]
    assert [r["verdict"] for r in out] == ["uncertain", "ai", "real"]
    assert [r["uncertain_reason"] for r in out] == ["reencode_shift", None, None]
    views = len(POLICY.views(fragile)[0])
    assert detector.session.calls == [3 * views, 2 * views]  # the second pass: the two AI-side images only


@pytest.mark.parametrize("quality", [90, 50])
def test_reencode_keeps_shape_and_type(quality):
    image = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    out = reencode_jpeg(image, quality)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)


def test_a_rule_that_is_off_is_stored_as_json_null_and_read_back_off():
    import json

    rule = AbstentionRule(max_view_spread=1.5)
    stored = json.loads(json.dumps(rule.to_dict(), allow_nan=False))  # standard JSON: no Infinity
    assert stored["max_reencode_shift"] is None
    back = AbstentionRule.from_dict(stored)
    assert back == rule and not back.needs_reencode
    assert back.reason("ai", 2.0) is not None and back.reason("ai", 1.0, reencode_shift=9.0) is None
