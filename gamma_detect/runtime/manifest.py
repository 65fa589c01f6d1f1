"""The model manifest: the contract between an exported artifact and every runtime.

``manifest.json`` sits beside the artifacts it describes. It is the only place
that holds the input size and layout, the crop policy and how crop results
combine, the output names and meanings, the calibration temperature (for
transparency: it is folded into the graphs), the image decision (``decision``: how
view scores and region evidence make the score the bands are over) and the head-1
map's calibration (``mask_calibration``; both in gamma_detect/decision.py), the verdict bands, the training
data digest, the evaluation summary, each file's sha256 and the versions that
built it. Runtimes read everything from here; nothing is duplicated as a
constant on the serving side.

Serving reads it through the typed :class:`Manifest`; the build side (``export/``),
which writes it, edits the JSON dict that :func:`read_manifest` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..contract import MAX_BATCH_VIEWS
from ..crops import CropPolicy
from ..files import sha256_file

MANIFEST_NAME = "manifest.json"
FORMAT = "gamma-manifest/1"
REQUIRED = ("model", "input", "crop_policy", "outputs", "verdict_bands", "source_classes", "artifacts")


class ManifestError(ValueError):
    """A manifest is missing, malformed, or does not describe what was asked for."""


class ArtifactDigestMismatch(ManifestError):
    """An artifact file's sha256 differs from the one its manifest records."""


class EngineMismatch(ManifestError):
    """A TensorRT engine was built for another GPU or another TensorRT version."""


@dataclass(frozen=True)
class Artifact:
    """One file the manifest lists; ``entry`` is its whole JSON entry (precision, parity, build details)."""

    file: str
    variant: str
    format: str
    sha256: str
    entry: dict

    @classmethod
    def from_entry(cls, entry: dict) -> "Artifact":
        return cls(entry["file"], entry["variant"], entry["format"], entry["sha256"], entry)


@dataclass(frozen=True)
class Manifest:
    """What serving reads from a manifest, typed; ``raw`` is the JSON it came from."""

    directory: Path                 # artifact paths are relative to it
    name: str
    version: str
    policy: CropPolicy
    verdict_bands: tuple[dict, ...]  # {"name", "min", "max"}, max exclusive, in band order
    source_classes: tuple[str, ...]  # head-2 classes, in output channel order
    max_batch: int
    artifacts: tuple[Artifact, ...]
    raw: dict

    @classmethod
    def read(cls, path: str | Path) -> "Manifest":
        """The manifest of a model folder, a manifest file, or an artifact file beside its manifest."""
        raw, directory = read_manifest(path)
        return cls.from_dict(raw, directory)

    @classmethod
    def from_dict(cls, raw: dict, directory: str | Path) -> "Manifest":
        model = raw["model"]
        return cls(Path(directory), str(model["name"]), str(model["version"]), CropPolicy.from_dict(raw["crop_policy"]),
                   tuple(raw["verdict_bands"]), tuple(raw["source_classes"]), int(raw.get("max_batch", MAX_BATCH_VIEWS)),
                   tuple(Artifact.from_entry(e) for e in raw["artifacts"]), raw)

    def artifact(self, *, variant: str | None = None, file: str | None = None,
                 formats: Iterable[str] | None = None) -> Artifact:
        return Artifact.from_entry(find_artifact(self.raw["artifacts"], variant=variant, file=file, formats=formats))

    def verified_path(self, artifact: Artifact) -> Path:
        return verify_artifact(self.directory, artifact.entry)


def manifest_path(path: str | Path) -> Path:
    """The manifest for a directory, a manifest file, or an artifact file beside its manifest."""
    path = Path(path)
    if path.is_dir():
        return path / MANIFEST_NAME
    if path.suffix == ".json":
        return path
    return path.parent / MANIFEST_NAME


def read_manifest(path: str | Path) -> tuple[dict, Path]:
    """The manifest's JSON, checked for its format and required fields, and its directory."""
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
    for key in REQUIRED:
        if key not in manifest:
            raise ManifestError(f"{file} lacks the {key!r} field")
    return manifest, file.parent


def find_artifact(artifacts: Sequence[dict], *, variant: str | None = None, file: str | None = None,
                  formats: Iterable[str] | None = None) -> dict:
    """The artifact entry with this variant (or file name); a clear error listing what exists otherwise."""
    formats = set(formats) if formats else None
    for entry in artifacts:
        if formats and entry["format"] not in formats:
            continue
        if (variant is None or entry["variant"] == variant) and (file is None or entry["file"] == file):
            return entry
    have = ", ".join(f"{e['variant']} ({e['file']})" for e in artifacts) or "none"
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
