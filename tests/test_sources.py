"""Dataset loaders on tiny generated folders and CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from gamma_detect.train.sources import (
    DatasetError,
    DatasetNotFound,
    ImageRecord,
    load_csv_index,
    load_genimage,
    load_real_fake,
    load_records,
    load_starter,
    parse_label,
)


def _img(path: Path, fmt: str = "PNG", size=(4, 3)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (9, 9, 9)).save(path, fmt)
    return path


def _csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# --------------------------------------------------------------------------- starter

STARTER_HEADER = ["path", "label", "family", "group", "flags", "package", "sha256", "width",
                  "height", "format"]


@pytest.fixture()
def starter_index(tmp_path):
    root = tmp_path / "starter"
    rows = []
    spec = [
        ("a.webp", "ai", "FLUX.1", "core", "", "WEBP"),
        ("b.webp", "ai", "AI edit input (generator unknown)", "optional", "", "WEBP"),
        ("c.webp", "ai", "MOSS-Image", "core", "text", "WEBP"),
        ("d.webp", "ai", "AI-edited/upscaled", "optional", "text", "WEBP"),
        ("e.webp", "real", "gcompris:categorization", "core", "webp", "WEBP"),
        ("f.jpg", "real", "opencv-samples", "core", "", "JPEG"),
    ]
    for name, label, fam, group, flags, fmt in spec:
        _img(root / "images" / name, fmt, (6, 5))
        rows.append([f"images/{name}", label, fam, group, flags, "pkg", "0" * 64, 6, 5, fmt])
    return _csv(root / "index.csv", STARTER_HEADER, rows)


def test_load_starter_groups(starter_index):
    recs = load_starter(starter_index)
    assert [r.group for r in recs] == [
        "ai:FLUX.1", "ai:unknown", "ai:MOSS-Image", "ai:unknown",
        "real:gcompris:categorization", "real:opencv-samples",
    ]
    assert [r.label for r in recs] == [1, 1, 1, 1, 0, 0]
    a = recs[0]
    assert a == ImageRecord(path=starter_index.parent / "images/a.webp", label=1, group="ai:FLUX.1",
                            family="FLUX.1", flags="", width=6, height=5, format="WEBP")
    assert recs[1].family == "AI edit input (generator unknown)"
    assert recs[2].flags == "text"
    assert recs[4].flags == ""  # carving hint dropped
    assert all(r.path.is_file() for r in recs)


def test_load_starter_filters(starter_index):
    assert [r.path.name for r in load_starter(starter_index, include_optional=False)] == [
        "a.webp", "c.webp", "e.webp", "f.jpg"]
    assert [r.path.name for r in load_starter(starter_index, include_text=False)] == [
        "a.webp", "b.webp", "e.webp", "f.jpg"]
    assert [r.path.name for r in load_starter(starter_index, False, False)] == [
        "a.webp", "e.webp", "f.jpg"]


def test_load_starter_errors(tmp_path, starter_index):
    with pytest.raises(DatasetNotFound, match="starter index not found"):
        load_starter(tmp_path / "nope.csv")
    (starter_index.parent / "images/c.webp").unlink()
    with pytest.raises(DatasetNotFound, match=r"line 4: .*c\.webp is missing.*gamma data starter"):
        load_starter(starter_index)
    bad = _csv(tmp_path / "bad/index.csv", STARTER_HEADER,
               [["x.png", "maybe", "f", "core", "", "p", "0", 1, 1, "PNG"]])
    with pytest.raises(DatasetError, match=r"line 2: bad label 'maybe'"):
        load_starter(bad)
    empty = _csv(tmp_path / "empty/index.csv", STARTER_HEADER, [])
    with pytest.raises(DatasetError, match="no images found"):
        load_starter(empty)
    nocol = _csv(tmp_path / "nocol/index.csv", ["path", "label"], [["x", "ai"]])
    with pytest.raises(DatasetError, match="missing column.*family"):
        load_starter(nocol)


# --------------------------------------------------------------------------- GenImage


@pytest.fixture()
def genimage(tmp_path):
    root = tmp_path / "GenImage"
    for split in ("train", "val"):
        _img(root / "imagenet_ai_0419_biggan" / split / "ai" / f"{split}_1.png")
        _img(root / "imagenet_ai_0419_biggan" / split / "nature" / f"{split}_n.JPEG", "JPEG")
        # one extra level, as the official archives unpack
        _img(root / "Midjourney" / "imagenet_midjourney" / split / "ai" / f"{split}_mj.png")
        _img(root / "Midjourney" / "imagenet_midjourney" / split / "nature" / "sub" / f"{split}_x.png")
    (root / "imagenet_ai_0419_biggan" / "train" / "ai" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("readme")
    return root


def test_load_genimage(genimage):
    recs = load_genimage(genimage)
    got = sorted((r.group, r.label, r.path.name, r.family) for r in recs)
    assert got == [
        ("ai:Midjourney", 1, "train_mj.png", "Midjourney"),
        ("ai:imagenet_ai_0419_biggan", 1, "train_1.png", "imagenet_ai_0419_biggan"),
        ("real:Midjourney", 0, "train_x.png", "Midjourney"),
        ("real:imagenet_ai_0419_biggan", 0, "train_n.JPEG", "imagenet_ai_0419_biggan"),
    ]
    assert {r.path.name for r in load_genimage(genimage, "val")} == {
        "val_1.png", "val_n.JPEG", "val_mj.png", "val_x.png"}


def test_load_genimage_errors(tmp_path, genimage):
    with pytest.raises(DatasetError, match="split must be"):
        load_genimage(genimage, "test")
    with pytest.raises(DatasetNotFound, match="GenImage root not found"):
        load_genimage(tmp_path / "missing")
    (tmp_path / "flat" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no <subset>/train/ai"):
        load_genimage(tmp_path / "flat")
    (tmp_path / "emptyset" / "s" / "train" / "ai").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images found"):
        load_genimage(tmp_path / "emptyset")


# --------------------------------------------------------------------------- folders


def test_load_real_fake(tmp_path):
    root = tmp_path / "ds"
    _img(root / "real" / "top.png")
    _img(root / "real" / "coco" / "deep" / "x.jpg", "JPEG")
    _img(root / "fake" / "sdxl" / "y.webp", "WEBP")
    _img(root / "fake" / "z.png")
    _img(root / "fake" / ".hidden" / "h.png")
    _img(root / "fake" / "._mac.png")
    (root / "fake" / "sdxl" / "prompt.txt").write_text("text")
    recs = load_real_fake(root)
    got = sorted((r.path.name, r.label, r.group, r.family) for r in recs)
    assert got == [
        ("top.png", 0, "real", ""),
        ("x.jpg", 0, "real:coco", "coco"),
        ("y.webp", 1, "ai:sdxl", "sdxl"),
        ("z.png", 1, "ai", ""),
    ]


def test_load_real_fake_ai_alias(tmp_path):
    _img(tmp_path / "ds" / "ai" / "g" / "a.png")
    assert [(r.label, r.group) for r in load_real_fake(tmp_path / "ds")] == [(1, "ai:g")]


def test_load_real_fake_errors(tmp_path):
    with pytest.raises(DatasetNotFound, match="dataset folder not found"):
        load_real_fake(tmp_path / "missing")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        load_real_fake(tmp_path / "f.txt")
    (tmp_path / "other" / "images").mkdir(parents=True)
    with pytest.raises(DatasetError, match="needs a real/ and a fake/"):
        load_real_fake(tmp_path / "other")
    (tmp_path / "empty" / "real").mkdir(parents=True)
    (tmp_path / "empty" / "fake").mkdir(parents=True)
    (tmp_path / "empty" / "fake" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no images found"):
        load_real_fake(tmp_path / "empty")


# --------------------------------------------------------------------------- CSV


def test_load_csv_index(tmp_path):
    _img(tmp_path / "d" / "img" / "a.png")
    _img(tmp_path / "d" / "img" / "b.png")
    _img(tmp_path / "d" / "img" / "c.png")
    absolute = _img(tmp_path / "elsewhere" / "e.png")
    idx = _csv(tmp_path / "d" / "list.csv", ["path", "label", "group", "family"], [
        ["img/a.png", "AI", "", "SD 1.5"],
        ["img/b.png", "real", "real:camera", "phone"],
        ["img/c.png", "fake", "", ""],
        [str(absolute), "0", "", ""],
        ["img/a.png", " 1 ", "mygroup", ""],
    ])
    recs = load_csv_index(idx)
    assert [(r.label, r.group, r.family) for r in recs] == [
        (1, "ai:SD 1.5", "SD 1.5"), (0, "real:camera", "phone"), (1, "ai:unknown", ""),
        (0, "real:unknown", ""), (1, "mygroup", ""),
    ]
    assert recs[0].path == tmp_path / "d" / "img" / "a.png"
    assert recs[3].path == absolute
    # minimal columns only
    only = _csv(tmp_path / "d" / "min.csv", ["path", "label"], [["img/a.png", "real"]])
    assert load_csv_index(only) == [ImageRecord(tmp_path / "d/img/a.png", 0, "real:unknown", "")]


def test_load_csv_index_errors(tmp_path):
    _img(tmp_path / "a.png")
    with pytest.raises(DatasetNotFound, match="CSV index not found"):
        load_csv_index(tmp_path / "nope.csv")
    bad = _csv(tmp_path / "bad.csv", ["path", "label"], [["a.png", "ai"], ["a.png", "synthetic"]])
    with pytest.raises(DatasetError, match=r"bad\.csv line 3: bad label 'synthetic'"):
        load_csv_index(bad)
    missing = _csv(tmp_path / "missing.csv", ["path", "label"], [["a.png", "ai"], ["b.png", "ai"]])
    with pytest.raises(DatasetNotFound, match=r"line 3: image not found: .*b\.png"):
        load_csv_index(missing)
    nocol = _csv(tmp_path / "nocol.csv", ["file", "label"], [["a.png", "ai"]])
    with pytest.raises(DatasetError, match=r"missing column\(s\) path"):
        load_csv_index(nocol)
    empty = _csv(tmp_path / "empty.csv", ["path", "label"], [])
    with pytest.raises(DatasetError, match="no images found"):
        load_csv_index(empty)
    nopath = _csv(tmp_path / "nopath.csv", ["path", "label"], [["", "ai"]])
    with pytest.raises(DatasetError, match="line 2: empty path"):
        load_csv_index(nopath)


def test_parse_label():
    assert [parse_label(v) for v in ("ai", "FAKE", "1", "real", "0")] == [1, 1, 1, 0, 0]
    with pytest.raises(DatasetError, match="row 7: bad label '2'"):
        parse_label("2", "row 7")


# --------------------------------------------------------------------------- dispatch


def test_load_records_dispatch(tmp_path, starter_index, genimage):
    assert load_records(f"starter:{starter_index}") == load_starter(starter_index)
    assert load_records(f"genimage:{genimage}") == load_genimage(genimage, "train")
    assert load_records(f"genimage:{genimage}:val") == load_genimage(genimage, "val")
    _img(tmp_path / "ds" / "real" / "a.png")
    assert load_records(f"folders:{tmp_path / 'ds'}") == load_real_fake(tmp_path / "ds")
    idx = _csv(tmp_path / "ds" / "i.csv", ["path", "label"], [["real/a.png", "real"]])
    assert load_records(f"csv:{idx}") == load_csv_index(idx)


def test_load_records_errors(tmp_path):
    for spec in ("imagenet:/x", str(tmp_path), "csv:", "folders"):
        with pytest.raises(DatasetError, match="unknown dataset spec"):
            load_records(spec)
    with pytest.raises(DatasetNotFound):
        load_records(f"folders:{tmp_path / 'missing'}")
