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


def fit_bands(real_probabilities: np.ndarray, max_real_in_ai: float = 0.05) -> list[dict]:
    """Five verdict bands over the calibrated probability.

    ``ai`` starts where at most ``max_real_in_ai`` of real out-of-fold images score; the
    other edges sit at 0.2, 0.4 and 0.6, each lowered to stay below the ``ai`` edge.
    """
    real = np.sort(np.asarray(real_probabilities, np.float64))
    # Smallest threshold t with share(real >= t) <= max_real_in_ai.
    k = int(np.ceil(len(real) * (1 - max_real_in_ai)))
    ai_edge = float(np.nextafter(real[k - 1], 1.0)) if k >= 1 else 0.5
    ai_edge = min(max(ai_edge, 1e-6), 1.0)
    edges = [min(0.2, ai_edge), min(0.4, ai_edge), min(0.6, ai_edge), ai_edge]
    edges = [float(e) for e in np.maximum.accumulate(edges)]
    lows = [0.0, *edges]
    highs = [*edges, 1.0 + 1e-9]
    return [{"name": n, "min": lo, "max": hi} for n, lo, hi in zip(BAND_NAMES, lows, highs)]
