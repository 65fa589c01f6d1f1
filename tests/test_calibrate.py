import numpy as np
import pytest

from gamma_detect.train.calibrate import bands_from_edges, fit_temperature
from gamma_detect.verdict import BAND_NAMES, verdict


def test_temperature_recovers_a_known_scale():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    assert fit_temperature(true_logits * 3, labels) == pytest.approx(3, rel=0.08)


def test_bands_follow_the_fitted_edges():
    bands = bands_from_edges(0.55, 0.8)
    assert [b["name"] for b in bands] == list(BAND_NAMES)
    assert [b["min"] for b in bands] == [0.0, 0.2, 0.4, 0.55, 0.8]
    for p, name in ((0.0, "real"), (0.3, "likely_real"), (0.5, "uncertain"), (0.6, "likely_ai"), (0.8, "ai"),
                    (1.0, "ai")):
        assert verdict(p, bands) == name


def test_bands_stay_ordered_when_the_edges_are_low():
    bands = bands_from_edges(0.1, 0.05)  # likely_ai above ai: clipped to it
    mins = [b["min"] for b in bands]
    assert mins == sorted(mins) and bands[-1]["min"] == 0.05
    assert verdict(0.5, bands) == "ai" and verdict(0.0, bands) == "real"
