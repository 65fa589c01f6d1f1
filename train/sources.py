"""Loaders for training/evaluation data. Every loader returns ``list[ImageRecord]``.

``group`` is the unit for grouped validation splits (hold out whole groups, never single
images): the generator family for AI images (``ai:<family>``; every AI image whose generator
is unknown goes to the single group ``ai:unknown``) and the photo source for real images
(``real:<source>``, e.g. ``real:gcompris:categorization``, ``real:opencv-samples``).

Spec strings for :func:`load_records`::

    starter:<index.csv>            index written by `gamma data starter`
    genimage:<root>[:train|val]    GenImage layout <subset>/{train,val}/{ai,nature}
    folders:<root>                 <root>/real/**, <root>/fake/** (or <root>/ai/**)
    csv:<file.csv>                 columns path,label[,group,family,flags,width,height,format]
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..images import IMAGE_EXTENSIONS

__all__ = [
    "IMAGE_EXTENSIONS",
    "DatasetError",
    "DatasetNotFound",
    "ImageRecord",
    "load_csv_index",
    "load_genimage",
    "load_real_fake",
    "load_records",
    "load_starter",
    "parse_label",
]


# manifest flags that only tell the builder how to carve a .rcc bundle: not image properties
_CARVE_FLAGS = frozenset({"webp", "jpeg"})

_LABELS = {"ai": 1, "fake": 1, "1": 1, "real": 0, "0": 0}


class DatasetError(ValueError):
    """A dataset cannot be loaded: bad layout, bad value, or nothing in it."""


class DatasetNotFound(DatasetError, FileNotFoundError):
    """A dataset file or folder does not exist."""


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    label: int  # 1 = AI/fake, 0 = real
    group: str  # validation group ("ai:<family>", "ai:unknown", "real:<source>")
    family: str  # raw family/source name
    flags: str = ""  # e.g. "text"
    width: int = 0
    height: int = 0
    format: str = ""


def parse_label(value: str, where: str = "") -> int:
    """``ai|fake|1`` -> 1, ``real|0`` -> 0 (case-insensitive); anything else raises."""
    v = str(value).strip().lower()
    if v not in _LABELS:
        raise DatasetError(
            f"{where + ': ' if where else ''}bad label {value!r} (expected ai, real, fake, 1 or 0)"
        )
    return _LABELS[v]


def _flag_tokens(flags: str) -> list[str]:
    return [t for t in re.split(r"[\s,;|]+", flags or "") if t]


def _int(value: str | None) -> int:
    try:
        return int(float(value)) if value not in (None, "") else 0
    except ValueError:
        return 0


def _require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DatasetNotFound(f"{what} not found: {path}")
    if not path.is_dir():
        raise DatasetError(f"{what} is not a folder: {path}")
    return path


def _require_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DatasetNotFound(f"{what} not found: {path}")
    if not path.is_file():
        raise DatasetError(f"{what} is not a file: {path}")
    return path


def _images_under(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted; hidden files and folders skipped)."""
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            out.append(p)
    return sorted(out)


def _read_csv(csv_path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    with Path(csv_path).open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in required if c not in fields]
        if missing:
            raise DatasetError(
                f"{csv_path}: missing column(s) {', '.join(missing)} (has: {', '.join(fields) or 'none'})"
            )
        rows = []
        for line, r in enumerate(reader, start=2):
            r = {(k or "").strip(): (v or "").strip() for k, v in r.items() if k is not None}
            if not any(r.values()):
                continue  # blank line
            rows.append((line, r))
    return rows


def _nonempty(records: list[ImageRecord], what: str) -> list[ImageRecord]:
    if not records:
        raise DatasetError(f"{what}: no images found")
    return records


# --------------------------------------------------------------------------- starter


def load_starter(index_csv: Path, include_optional: bool = True,
                 include_text: bool = True) -> list[ImageRecord]:
    """Records from the ``index.csv`` written by ``gamma data starter``.

    Groups: AI rows with ``group == optional`` (unknown generator, upscalers/enhancers) ->
    ``ai:unknown``; other AI rows -> ``ai:<family>``; real rows -> ``real:<family>``.
    ``include_optional=False`` drops the optional rows, ``include_text=False`` drops rows
    flagged ``text``. The carving hints ``webp``/``jpeg`` are not copied into ``flags``.
    """
    index_csv = _require_file(Path(index_csv), "starter index")
    base = index_csv.parent
    out = []
    for line, r in _read_csv(index_csv, ("path", "label", "family", "group")):
        where = f"{index_csv} line {line}"
        label = parse_label(r["label"], where)
        if r["label"].lower() not in ("ai", "real"):
            raise DatasetError(f"{where}: bad label {r['label']!r} (starter index uses ai or real)")
        optional = r["group"].lower() == "optional"
        tokens = [t for t in _flag_tokens(r.get("flags", "")) if t.lower() not in _CARVE_FLAGS]
        if optional and not include_optional:
            continue
        if "text" in (t.lower() for t in tokens) and not include_text:
            continue
        family = r["family"]
        if label == 1:
            group = "ai:unknown" if optional else f"ai:{family}"
        else:
            group = f"real:{family}"
        path = base / r["path"]
        if not path.is_file():
            raise DatasetNotFound(
                f"{where}: image {path} is missing; rerun `gamma data starter --out {base}`"
            )
        out.append(ImageRecord(
            path=path, label=label, group=group, family=family, flags=" ".join(tokens),
            width=_int(r.get("width")), height=_int(r.get("height")), format=r.get("format", ""),
        ))
    return _nonempty(out, f"starter index {index_csv}")


# --------------------------------------------------------------------------- GenImage


def load_genimage(root: Path, split: str = "train") -> list[ImageRecord]:
    """GenImage: ``root/<subset>/{train,val}/{ai,nature}/...``.

    Also accepts one extra level (``root/<generator>/<subset>/train/...``, as the official
    archives unpack); the subset name is then the first folder under ``root``.
    Groups: ``ai:<subset>`` and ``real:<subset>``.
    """
    if split not in ("train", "val"):
        raise DatasetError(f"GenImage split must be 'train' or 'val', not {split!r}")
    root = _require_dir(Path(root), "GenImage root")

    def has_split(d: Path) -> bool:
        s = d / split
        return s.is_dir() and ((s / "ai").is_dir() or (s / "nature").is_dir())

    out: list[ImageRecord] = []
    found = 0
    for top in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        dirs = [top] if has_split(top) else sorted(
            d for d in top.iterdir() if d.is_dir() and has_split(d)
        )
        for d in dirs:
            found += 1
            subset = top.name
            for kind, label in (("ai", 1), ("nature", 0)):
                folder = d / split / kind
                if not folder.is_dir():
                    continue
                group = f"{'ai' if label else 'real'}:{subset}"
                out.extend(ImageRecord(path=p, label=label, group=group, family=subset)
                           for p in _images_under(folder))
    if not found:
        raise DatasetError(
            f"GenImage root {root}: no <subset>/{split}/ai or <subset>/{split}/nature folders"
        )
    return _nonempty(out, f"GenImage root {root} (split {split})")


# --------------------------------------------------------------------------- folders


def load_real_fake(root: Path) -> list[ImageRecord]:
    """``root/real/**`` (label 0) and ``root/fake/**`` or ``root/ai/**`` (label 1), recursive.

    Group: the first sub-folder under ``real/``/``fake/`` as ``real:<sub>``/``ai:<sub>``;
    images directly in ``real/``/``fake/`` get ``real``/``ai``. ``family`` is the sub-folder
    name (empty when there is none).
    """
    root = _require_dir(Path(root), "dataset folder")
    tops = [(root / "real", 0), (root / "fake", 1), (root / "ai", 1)]
    if not any(t.is_dir() for t, _ in tops):
        raise DatasetError(f"dataset folder {root}: needs a real/ and a fake/ (or ai/) sub-folder")
    out = []
    for top, label in tops:
        if not top.is_dir():
            continue
        prefix = "ai" if label else "real"
        for p in _images_under(top):
            rel = p.relative_to(top).parts
            sub = rel[0] if len(rel) > 1 else ""
            out.append(ImageRecord(path=p, label=label, group=f"{prefix}:{sub}" if sub else prefix,
                                   family=sub))
    return _nonempty(out, f"dataset folder {root}")


# --------------------------------------------------------------------------- CSV


def load_csv_index(csv_path: Path) -> list[ImageRecord]:
    """CSV with columns ``path,label`` (label ai|real|fake|1|0) and optional ``group``,
    ``family``, ``flags``, ``width``, ``height``, ``format``. Relative paths are relative to
    the CSV's folder. Without ``group``: ``ai:<family>``/``real:<family>``, or
    ``ai:unknown``/``real:unknown`` when the family is empty too."""
    csv_path = _require_file(Path(csv_path), "CSV index")
    base = csv_path.parent
    out = []
    for line, r in _read_csv(csv_path, ("path", "label")):
        where = f"{csv_path} line {line}"
        if not r["path"]:
            raise DatasetError(f"{where}: empty path")
        label = parse_label(r["label"], where)
        family = r.get("family", "")
        group = r.get("group", "") or f"{'ai' if label else 'real'}:{family or 'unknown'}"
        path = Path(r["path"]).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise DatasetNotFound(f"{where}: image not found: {path}")
        out.append(ImageRecord(
            path=path, label=label, group=group, family=family, flags=r.get("flags", ""),
            width=_int(r.get("width")), height=_int(r.get("height")), format=r.get("format", ""),
        ))
    return _nonempty(out, f"CSV index {csv_path}")


# --------------------------------------------------------------------------- dispatch


def load_records(spec: str) -> list[ImageRecord]:
    """``starter:<index.csv>``, ``genimage:<root>[:train|val]``, ``folders:<root>``, ``csv:<file>``."""
    kind, sep, rest = str(spec).partition(":")
    kind = kind.strip().lower()
    if not sep or not rest:
        kind = ""
    if kind == "starter":
        return load_starter(Path(rest))
    if kind == "genimage":
        root, split = rest, "train"
        head, s, tail = rest.rpartition(":")
        if s and tail in ("train", "val"):
            root, split = head, tail
        return load_genimage(Path(root), split)
    if kind == "folders":
        return load_real_fake(Path(rest))
    if kind == "csv":
        return load_csv_index(Path(rest))
    raise DatasetError(
        f"unknown dataset spec {spec!r}: use starter:<index.csv>, genimage:<root>[:train|val], "
        f"folders:<root> or csv:<file.csv>"
    )
