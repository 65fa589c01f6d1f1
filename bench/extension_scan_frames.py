"""`python3 bench/extension_scan_frames.py`: does an on-device page scan of 50 images drop frames in the page?
(issue 23). Debian's chromium with the built extension in on-device mode and no server; a page of 50 distinct
640x640 JPEGs shown at 128 px (all eligible, all in view); the page records every animation frame
(requestAnimationFrame) and every long animation frame (PerformanceObserver, `long-animation-frame`) from the
scan's start to its last badge, with the scripts each long frame ran. A dropped frame is a gap between frames
above 1.5 refresh intervals.

    (cd extension && npm ci && npm run build) && python3 bench/extension_scan_frames.py --images 50 --json OUT
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

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest_extension import launch_extension, serve_files  # noqa: E402

from gamma_detect.export.bench import cpu_model, simd_flags  # noqa: E402

# The page's own frame log: rAF timestamps and long animation frames, read back at the end.
RECORDER = """<script>
window.frames_ = []; window.long_ = [];
(function tick(t) { window.frames_.push(t); requestAnimationFrame(tick); })(performance.now());
try { new PerformanceObserver((list) => { for (const e of list.getEntries()) window.long_.push(
  {start: e.startTime, duration: e.duration, blocking: e.blockingDuration,
   scripts: e.scripts.map((x) => `${x.sourceURL.split("/").pop()} ${x.sourceFunctionName} ${Math.round(x.duration)} ms`)}); })
  .observe({type: "long-animation-frame", buffered: false}); } catch (e) { window.long_ = null; }
</script>"""


def photos(count: int) -> dict[str, bytes]:
    """``count`` distinct JPEGs: crops of the tests' photos at different offsets, mirrored every other one."""
    sources = sorted((REPO / "tests" / "assets" / "photos").glob("*.jpg"))
    files = {}
    for i in range(count):
        photo = Image.open(sources[i % len(sources)]).convert("RGB")
        side = min(photo.size) * 3 // 4
        x, y = (i * 7) % (photo.width - side + 1), (i * 5) % (photo.height - side + 1)
        tile = photo.crop((x, y, x + side, y + side)).resize((640, 640), Image.BICUBIC)
        if i % 2:
            tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out = io.BytesIO()
        tile.save(out, "JPEG", quality=88)
        files[f"p{i}.jpg"] = out.getvalue()
    return files


def page(count: int) -> bytes:
    images = "".join(f'<img id="p{i}" src="p{i}.jpg" width="128" height="128">' for i in range(count))
    return (f'<!doctype html><html><head>{RECORDER}<style>body{{margin:8px}} img{{margin:2px}}</style></head>'
            f'<body style="width:1200px">{images}</body></html>').encode()


def run(count: int, timeout: float) -> dict:
    files = {"index.html": page(count), **photos(count)}
    with serve_files(files) as site, tempfile.TemporaryDirectory() as profile, \
            launch_extension(Path(profile)) as browser:
        browser.configure(mode="device", serverUrl="http://127.0.0.1:9", autoScanSites=[])
        browser.sw("() => gammaDetect.toDevice('gamma:device:status', {load: true})")   # model loaded first
        tab_page = browser.context.new_page()
        tab_page.goto(site.page())
        tab_page.wait_for_load_state("load")
        tab = browser.tab_id(tab_page)
        tab_page.evaluate("() => { window.frames_.length = 0; if (window.long_) window.long_.length = 0; }")
        started = time.perf_counter()
        answer = browser.sw("([tabId]) => gammaDetect.handlers['gamma:scanTab']({tabId, on: true})", [tab])
        assert answer["ok"] and answer["scanning"], answer
        state = browser.wait_for(tab_page, lambda s: s["counts"]["pending"] == 0 and s["counts"]["checked"] >= count,
                                 timeout=timeout, what=f"the on-device scan of {count} images")
        scan_s = time.perf_counter() - started
        log = tab_page.evaluate("() => ({frames: window.frames_, long: window.long_})")
    frames = log["frames"]
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    interval = statistics.median(gaps)
    dropped = [g for g in gaps if g > 1.5 * interval]
    return {"images": count, "checked": state["counts"]["checked"], "errors": state["counts"]["errors"],
            "scan_s": round(scan_s, 2), "frames": len(frames), "frame_interval_ms": round(interval, 2),
            "gaps_over_1.5_intervals": len(dropped), "longest_gap_ms": round(max(gaps), 1),
            "gap_p99_ms": round(sorted(gaps)[int(0.99 * (len(gaps) - 1))], 1),
            "long_animation_frames": None if log["long"] is None else len(log["long"]),
            "longest_animation_frame_ms": (round(max((e["duration"] for e in log["long"]), default=0), 1)
                                           if log["long"] is not None else None),
            "long_animation_frame_scripts": [e["scripts"] for e in log["long"] or []]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600, help="seconds the scan may take")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    result = {"command": f"python3 bench/extension_scan_frames.py {' '.join(sys.argv[1:])}".strip(),
              "cpu": cpu_model(), "logical_cores": os.cpu_count(), "simd_flags": simd_flags(),
              "platform": platform.platform(), "chromium": chromium, "load_average_at_start": os.getloadavg(),
              **run(args.images, args.timeout)}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
