"""`python3 bench/warc_scan.py`: a crawl scanned end to end against `gamma predict` on the same images as files.

Makes a WARC of ``--images`` unique photo-like JPEGs (bench/decode.py's ``photo``) on pages of ``--per-page``,
writes the same bytes as files, then times, each in a fresh process pinned to one core (``taskset -c 0``, one
inference thread, the same ``--variant``):

- ``gamma scan crawl.warc.gz --local``: index, parse, read by offset, decode, evidence, infer, write JSONL;
- ``gamma predict --json`` on the files: decode, evidence, infer, print.

Images/s per core is images / wall seconds (the median of ``--rounds`` interleaved runs), the processes' start
included for both. ``--readers`` also times
warcio against FastWARC reading every payload of the WARC (why server/crawl uses warcio: see its warc.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from decode import photo  # noqa: E402  (bench/decode.py)
from crawl_support import WarcBuilder  # noqa: E402  (tests/crawl_support.py)

from gamma_detect.export.bench import cpu_model, simd_flags  # noqa: E402

SITE = "http://bench.test"


def make_crawl(folder: Path, images: int, per_page: int, size: tuple[int, int]) -> tuple[Path, list[Path]]:
    from PIL import Image

    files = []
    (folder / "files").mkdir()
    warc = folder / "crawl.warc.gz"
    with WarcBuilder(warc) as w:
        for start in range(0, images, per_page):
            names = [f"{i}.jpg" for i in range(start, min(start + per_page, images))]
            w.response(f"{SITE}/page{start // per_page}.html",
                       "".join(f'<img src="/img/{name}">' for name in names).encode())
            for name in names:
                buffer = io.BytesIO()
                Image.fromarray(photo(*size, seed=int(name[:-4]))).save(buffer, "JPEG", quality=85)
                w.response(f"{SITE}/img/{name}", buffer.getvalue(), "image/jpeg")
                path = folder / "files" / name
                path.write_bytes(buffer.getvalue())
                files.append(path)
    return warc, files


def timed(command: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(["taskset", "-c", "0", *command], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{done.stderr[-2000:]}")
    return elapsed, done


def readers(warc: Path) -> dict:
    from warcio.archiveiterator import ArchiveIterator

    out = {}
    start = time.perf_counter()
    with open(warc, "rb") as handle:
        total = sum(len(record.content_stream().read()) for record in ArchiveIterator(handle))
    out["warcio_s"] = round(time.perf_counter() - start, 3)
    try:
        from fastwarc.warc import ArchiveIterator as FastIterator
    except ImportError:
        out["fastwarc_s"] = None   # pip install fastwarc to compare
        return out
    start = time.perf_counter()
    assert sum(len(record.reader.read()) for record in FastIterator(str(warc), auto_decode="all")) == total
    out["fastwarc_s"] = round(time.perf_counter() - start, 3)
    out["payload_mb"] = round(total / 1e6, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--size", default="640x480", help="image width x height")
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--rounds", type=int, default=3, help="scan and predict runs, interleaved; medians reported")
    parser.add_argument("--readers", action="store_true", help="also time warcio against FastWARC")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GAMMA_THREADS": "1", "GAMMA_VARIANT": args.variant}
    with tempfile.TemporaryDirectory(prefix="warc-bench-") as work:
        folder = Path(work)
        warc, files = make_crawl(folder, args.images, args.per_page, size)
        scans, predicts = [], []
        for _ in range(args.rounds):   # interleaved: a shared machine's load changes under both alike
            elapsed, done = timed([sys.executable, "-m", "gamma_detect.cli", "scan", str(warc), "--local", "--json",
                                   "--no-progress", "--out", str(folder / "out.jsonl")], env)
            assert json.loads(done.stdout)["statuses"] == {"scored": args.images}, done.stdout
            scans.append(elapsed)
            elapsed, done = timed([sys.executable, "-m", "gamma_detect.cli", "predict", "--json", "--threads", "1",
                                   "--variant", args.variant, *map(str, files)], env)
            assert len(done.stdout.splitlines()) == args.images
            predicts.append(elapsed)
        scan_s, predict_s = statistics.median(scans), statistics.median(predicts)
        result = {"command": " ".join(["python3", "bench/warc_scan.py", *(argv if argv is not None else sys.argv[1:])]),
                  "cpu": cpu_model(), "simd_flags": simd_flags(), "python": platform.python_version(),
                  "images": args.images, "per_page": args.per_page, "size": args.size, "variant": args.variant,
                  "warc_mb": round(warc.stat().st_size / 1e6, 1),
                  "scan_s": round(scan_s, 2), "scan_images_per_s": round(args.images / scan_s, 2),
                  "predict_s": round(predict_s, 2), "predict_images_per_s": round(args.images / predict_s, 2),
                  "scan_vs_predict": round(predict_s / scan_s, 3), "rounds": args.rounds,
                  "scan_rounds_s": [round(t, 2) for t in scans], "predict_rounds_s": [round(t, 2) for t in predicts]}
        if args.readers:
            result["readers"] = readers(warc)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
