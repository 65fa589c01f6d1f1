"""Temperature scaling and verdict bands, fitted on out-of-fold scores."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ..verdict import BAND_NAMES


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of sigmoid(logit / T)."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.float64)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        return float(np.mean(np.logaddexp(0, z) - labels * z))

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def bands_from_edges(likely_ai: float, ai: float) -> list[dict]:
    """Five verdict bands over the calibrated probability from the two fitted edges.

    ``likely_ai`` and ``ai`` are where those bands start (fitted per unseen source, nested: see
    loso.py); `real` and `likely_real` end at 0.2 and 0.4, each lowered to stay below ``likely_ai``.
    """
    ai = min(max(float(ai), 1e-6), 1.0)
    likely_ai = min(max(float(likely_ai), 0.0), ai)
    edges = [float(e) for e in np.maximum.accumulate([min(0.2, likely_ai), min(0.4, likely_ai), likely_ai, ai])]
    lows = [0.0, *edges]
    highs = [*edges, 1.0 + 1e-9]
    return [{"name": n, "min": lo, "max": hi} for n, lo, hi in zip(BAND_NAMES, lows, highs)]
