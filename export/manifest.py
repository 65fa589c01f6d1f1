"""The model manifest: the contract between an exported artifact and every runtime.

``manifest.json`` sits beside the artifacts it describes. It is the only place
that holds the input size and layout, the crop policy and how crop results
combine, the output names and meanings, the calibration temperature (for
transparency: it is folded into the graphs), the verdict bands, the training
data digest, the evaluation summary, each file's sha256 and the versions that
built it. Runtimes read everything from here; nothing is duplicated as a
constant on the serving side.

This module is imported by the runtime: numpy and the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any, Iterable

MANIFEST_NAME = "manifest.json"
FORMAT = "gamma-manifest/1"

# How per-view calibrated probabilities become one image probability. The graph outputs
# p_i = sigmoid(logit_i / T); the crop policy averages view logits, so the image probability is
# sigmoid(mean_i logit(clip(p_i))) = sigmoid(mean_i logit_i / T) (exact up to the clip).
COMBINE_RULE = {
    "name": "mean_logit",
    "formula": "sigmoid(mean_i(log(p_i / (1 - p_i)))) with p_i clipped to [eps, 1 - eps]",
    "eps": 1e-7,
    "equivalent_to": "sigmoid(mean_i(logit_i) / temperature)",
    "maps": "per-view head-1 and head-2 maps are upsampled bilinearly (half-pixel centres) to the view size and "
            "stitched back at image resolution by the crop policy (mean where views overlap, the global view "
            "elsewhere)",
}


class ManifestError(ValueError):
    """A manifest is missing, malformed, or does not describe what was asked for."""


class ArtifactDigestMismatch(ManifestError):
    """An artifact file's sha256 differs from the one its manifest records."""


class EngineMismatch(ManifestError):
    """A TensorRT engine was built for another GPU or another TensorRT version."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(path: str | Path) -> Path:
    """The manifest for a directory, a manifest file, or an artifact file beside its manifest."""
    path = Path(path)
    if path.is_dir():
        return path / MANIFEST_NAME
    if path.suffix == ".json":
        return path
    return path.parent / MANIFEST_NAME


def read_manifest(path: str | Path) -> tuple[dict, Path]:
    """The manifest and its directory (artifact paths in it are relative to that directory)."""
    file = manifest_path(path)
    if not file.is_file():
        raise ManifestError(f"no model manifest at {file}: export a model with `gamma export CHECKPOINT --to onnx`"
                            " (it writes manifest.json beside the artifacts)")
    try:
        manifest = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{file} is not a GAMMA model manifest (expected format {FORMAT!r}, "
                            f"found {manifest.get('format') if isinstance(manifest, dict) else type(manifest).__name__!r})")
    for key in ("model", "input", "crop_policy", "outputs", "verdict_bands", "source_classes", "artifacts"):
        if key not in manifest:
            raise ManifestError(f"{file} lacks the {key!r} field")
    return manifest, file.parent


def write_manifest(directory: str | Path, manifest: dict) -> Path:
    """Write atomically: a reader never sees half a manifest."""
    file = Path(directory) / MANIFEST_NAME
    tmp = file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, file)
    return file


def find_artifact(manifest: dict, *, variant: str | None = None, file: str | None = None,
                  formats: Iterable[str] | None = None) -> dict:
    """The artifact entry with this variant (or file name); a clear error listing what exists otherwise."""
    formats = set(formats) if formats else None
    for entry in manifest["artifacts"]:
        if formats and entry["format"] not in formats:
            continue
        if (variant is None or entry["variant"] == variant) and (file is None or entry["file"] == file):
            return entry
    have = ", ".join(f"{e['variant']} ({e['file']})" for e in manifest["artifacts"]) or "none"
    wanted = f"variant {variant!r}" if variant else f"file {file!r}"
    raise ManifestError(f"the manifest lists no {wanted}{' of format ' + '/'.join(sorted(formats)) if formats else ''};"
                        f" it lists: {have}")


def verify_artifact(directory: str | Path, entry: dict) -> Path:
    """The artifact's path, after checking it exists and its sha256 is the recorded one."""
    path = Path(directory) / entry["file"]
    if not path.is_file():
        raise ManifestError(f"artifact {path} listed in the manifest is missing")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise ArtifactDigestMismatch(
            f"refusing {path}: its sha256 is {actual[:16]}..., the manifest records {entry['sha256'][:16]}...; "
            "the file was changed or replaced after export. Re-export it with `gamma export` (which rewrites the "
            "manifest), or restore the original file.")
    return path


def upsert_artifact(manifest: dict, entry: dict) -> dict:
    """Add an artifact entry, replacing any entry with the same variant or file."""
    manifest["artifacts"] = [e for e in manifest["artifacts"]
                             if e["variant"] != entry["variant"] and e["file"] != entry["file"]] + [entry]
    return manifest


def artifact_entry(directory: str | Path, file: str | Path, variant: str, fmt: str, precision: str,
                   **extra: Any) -> dict:
    path = Path(directory) / Path(file).name
    return {"file": path.name, "variant": variant, "format": fmt, "precision": precision,
            "sha256": sha256_file(path), "bytes": path.stat().st_size, **extra}


def check_engine_compatible(entry: dict, gpu: dict | None, tensorrt_version: str | None) -> None:
    """Refuse an engine built for another GPU or TensorRT version (engines are not portable)."""
    built = entry.get("tensorrt", {})
    if tensorrt_version is None:
        raise EngineMismatch(f"{entry['file']} is a TensorRT engine but TensorRT is not installed here")
    if built.get("version") != tensorrt_version:
        raise EngineMismatch(f"{entry['file']} was built with TensorRT {built.get('version')}; this machine has "
                             f"TensorRT {tensorrt_version}. Rebuild it here with `gamma export CHECKPOINT --to tensorrt`.")
    if gpu is None:
        raise EngineMismatch(f"{entry['file']} is a TensorRT engine but no CUDA GPU is visible")
    want = entry.get("gpu", {})
    if (want.get("name"), want.get("compute_capability")) != (gpu.get("name"), gpu.get("compute_capability")):
        raise EngineMismatch(f"{entry['file']} was built for {want.get('name')} (sm {want.get('compute_capability')});"
                             f" this GPU is {gpu.get('name')} (sm {gpu.get('compute_capability')}). Engines are tied"
                             " to the GPU they were built on: rebuild with `gamma export CHECKPOINT --to tensorrt`.")


def machine_summary() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine()}
