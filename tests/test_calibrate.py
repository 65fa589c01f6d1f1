import numpy as np
import pytest

from gamma_detect.train.calibrate import fit_bands, fit_temperature
from gamma_detect.verdict import BAND_NAMES, verdict


def test_temperature_recovers_a_known_scale():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    assert fit_temperature(true_logits * 3, labels) == pytest.approx(3, rel=0.08)


def test_ai_band_holds_at_most_five_percent_of_reals():
    real = np.random.default_rng(1).beta(2, 5, 400)
    bands = fit_bands(real)
    assert [b["name"] for b in bands] == list(BAND_NAMES)
    ai_min = bands[-1]["min"]
    assert np.mean(real >= ai_min) <= 0.05
    assert np.mean(real >= np.nextafter(ai_min, 0) - 0.02) > 0.05  # and not further up than needed
    edges = [b["min"] for b in bands]
    assert edges == sorted(edges)
    for p in (0.0, 0.1, 0.5, ai_min, 0.999999, 1.0):
        assert verdict(p, bands) in BAND_NAMES
    assert verdict(1.0, bands) == "ai" and verdict(0.0, bands) == "real"


def test_bands_stay_ordered_when_reals_score_low():
    bands = fit_bands(np.full(100, 0.01))
    mins = [b["min"] for b in bands]
    assert mins == sorted(mins) and bands[-1]["min"] < 0.2
    assert verdict(0.5, bands) == "ai"
