"""Shipped model artifacts (the default model lives in ``default/``), found as package data."""

from importlib import resources
from pathlib import Path

# A regular package installs as files on disk (repository, editable install, wheel), so this is a real folder.
DEFAULT_MODEL_DIR = Path(str(resources.files(__name__) / "default"))
