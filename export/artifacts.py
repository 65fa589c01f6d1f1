"""Writing the manifest: artifact entries and the atomic write (the runtime reads it, the build side writes it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import sha256_file, write_atomic
from ..runtime.manifest import MANIFEST_NAME


def write_manifest(directory: str | Path, manifest: dict) -> Path:
    """Write atomically: a reader never sees half a manifest."""
    return write_atomic(Path(directory) / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=False) + "\n")


def upsert_artifact(manifest: dict, entry: dict) -> dict:
    """Add an artifact entry, replacing any entry with the same variant or file."""
    manifest["artifacts"] = [e for e in manifest["artifacts"]
                             if e["variant"] != entry["variant"] and e["file"] != entry["file"]] + [entry]
    return manifest


def artifact_entry(directory: str | Path, file: str | Path, variant: str, fmt: str, precision: str,
                   **extra: Any) -> dict:
    """A manifest entry for a file in ``directory``: its name, what it is, its sha256 and size."""
    path = Path(directory) / Path(file).name
    return {"file": path.name, "variant": variant, "format": fmt, "precision": precision,
            "sha256": sha256_file(path), "bytes": path.stat().st_size, **extra}
