"""Verdict bands: the calibrated probability mapped to five words.

The band edges are fitted at training time and stored in the model manifest;
this module only reads them, so every consumer shows the same verdict.
"""

from __future__ import annotations

from typing import Sequence

from .contract import VERDICTS as BAND_NAMES  # the bands' names, in band order (training names its bands so)


def verdict(probability: float, bands: Sequence[dict]) -> str:
    """Name of the band holding ``probability`` (bands are ``{"name", "min", "max"}``, max exclusive)."""
    for band in bands:
        if band["min"] <= probability < band["max"]:
            return band["name"]
    return bands[-1]["name"] if probability >= bands[-1]["min"] else bands[0]["name"]
