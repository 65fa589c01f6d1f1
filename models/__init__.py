"""Shipped model artifacts (the default model lives in ``default/``)."""

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
