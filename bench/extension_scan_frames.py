"""`python3 bench/extension_scan_frames.py`: does an on-device page scan of 50 images drop frames in the page?
(issue 23). Debian's chromium with the built extension in on-device mode and no server; a page of 50 distinct
640x640 JPEGs shown at 128 px (all eligible, all in view); the page records every animation frame
(requestAnimationFrame) and every long animation frame (PerformanceObserver, `long-animation-frame`) with the
scripts each ran. A dropped frame is a gap between frames above 1.5 refresh intervals.

Each run records the same page twice in a fresh browser: once idle (the model loaded, no scan, for --idle-s
seconds: the noise floor of headless chromium on this machine) and once from the scan's start to its last badge;
the runs alternate, and the result has both side by side. `--compare LABEL=DIR` adds another copy of the extension
(a baseline checkout: its own vendor/ built) whose scan is recorded in every run too, so before and after come
from the same minutes. `--trace OUT` writes a Chrome trace (devtools.timeline categories) of the first scan.

    (cd extension && npm ci && npm run build) && python3 bench/extension_scan_frames.py --images 50 --runs 3 --json OUT
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
from conftest_extension import EXTENSION_DIR, launch_extension, serve_files  # noqa: E402

from gamma_detect.export.bench import cpu_model, simd_flags  # noqa: E402

# The page's own frame log: rAF timestamps and long animation frames, read back at the end. A long frame's
# renderStart and styleAndLayoutStart say where its time went when no script is attributed.
RECORDER = """<script>
window.frames_ = []; window.long_ = [];
(function tick(t) { window.frames_.push(t); requestAnimationFrame(tick); })(performance.now());
try { new PerformanceObserver((list) => { for (const e of list.getEntries()) window.long_.push(
  {start: e.startTime, duration: e.duration, blocking: e.blockingDuration,
   render_start: e.renderStart ? e.renderStart - e.startTime : null,
   style_layout_start: e.styleAndLayoutStart ? e.styleAndLayoutStart - e.startTime : null,
   scripts: e.scripts.map((x) => `${x.sourceURL.split("/").pop()} ${x.sourceFunctionName} ${Math.round(x.duration)} ms`)}); })
  .observe({type: "long-animation-frame", buffered: false}); } catch (e) { window.long_ = null; }
</script>"""

TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "disabled-by-default-devtools.timeline.frame",
                    "toplevel", "v8.execute", "blink.user_timing", "loading", "cc", "viz", "gpu", "benchmark"]


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


def frame_stats(log: dict) -> dict:
    frames = log["frames"]
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    interval = statistics.median(gaps)
    long = log["long"]
    return {"frames": len(frames), "frame_interval_ms": round(interval, 2),
            "gaps_over_1.5_intervals": sum(g > 1.5 * interval for g in gaps), "longest_gap_ms": round(max(gaps), 1),
            # where the dropped frames were: seconds from the recording's start, and the gap's ms
            "dropped_at": [[round((a - frames[0]) / 1000, 2), round(g, 1)] for a, g in zip(frames, gaps) if g > 1.5 * interval],
            "gap_p99_ms": round(sorted(gaps)[int(0.99 * (len(gaps) - 1))], 1),
            "long_animation_frames": None if long is None else len(long),
            "longest_animation_frame_ms": None if long is None else round(max((e["duration"] for e in long), default=0), 1),
            "long_animation_frame_detail": [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in e.items() if k != "start"}
                                            for e in long or []]}


def chromium_threads(profile: Path) -> dict[str, tuple[int, int]]:
    """CPU time and run-queue wait (ns, /proc/<pid>/task/<tid>/schedstat) of every thread of the browser using
    ``profile``, summed by process kind and thread name: a thread that waits while runnable is starved of a core."""
    procs = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").split()   # chromium rewrites its own argv
        except OSError:
            continue
        procs[int(d.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), [a.decode(errors="replace") for a in cmdline])
    root = next((pid for pid, (_, cmd) in procs.items() if f"--user-data-dir={profile}" in cmd and
                 not any(a.startswith("--type=") for a in cmd)), None)
    mine, grew = {root}, True
    while grew:
        grew = False
        for pid, (ppid, _) in procs.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    out: dict[str, tuple[int, int]] = {}
    for pid in mine - {None}:
        cmd = procs[pid][1]
        kind = next((a[7:] for a in cmd if a.startswith("--type=")), "browser")
        if kind == "renderer":
            kind = "extension renderer" if "--extension-process" in cmd else "page renderer"
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
                run_ns, wait_ns, _ = (int(x) for x in (task / "schedstat").read_text().split())
            except (OSError, ValueError):
                continue
            key = f"{kind}/{name}"
            a, b = out.get(key, (0, 0))
            out[key] = (a + run_ns, b + wait_ns)
    return out


def cpu_delta(before: dict, after: dict, seconds: float) -> dict:
    """Per thread group over the recording: ms on a core and ms runnable but waiting, the busiest ten."""
    rows = {k: ((v[0] - before.get(k, (0, 0))[0]) / 1e6, (v[1] - before.get(k, (0, 0))[1]) / 1e6) for k, v in after.items()}
    top = sorted(rows.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:10]
    return {"cores_busy": round(sum(r for r, _ in rows.values()) / 1000 / seconds, 2),
            "threads_run_wait_ms": {k: [round(r), round(w)] for k, (r, w) in top}}


def traced(tab_page, categories: list[str]):
    """Start a Chrome trace over CDP; the returned function ends it and gives the trace events."""
    cdp = tab_page.context.new_cdp_session(tab_page)
    events: list[dict] = []
    done: list[bool] = []
    cdp.on("Tracing.dataCollected", lambda e: events.extend(e["value"]))
    cdp.on("Tracing.tracingComplete", lambda e: done.append(True))
    cdp.send("Tracing.start", {"traceConfig": {"includedCategories": categories}, "transferMode": "ReportEvents"})

    def end() -> list[dict]:
        cdp.send("Tracing.end")
        while not done:
            tab_page.wait_for_timeout(100)
        return events
    return end


def record(extension: Path, site, count: int, scan: bool, idle_s: float, timeout: float, trace: Path | None,
           threads: int | None) -> dict:
    """One fresh browser on the page: idle for ``idle_s`` or the scan to its last badge, with the frames logged.
    The page's state is polled the same way in both, so the poll's own cost is in the noise floor too."""
    with tempfile.TemporaryDirectory() as profile, launch_extension(Path(profile), extension) as browser:
        browser.configure(mode="device", serverUrl="http://127.0.0.1:9", autoScanSites=[])
        # the model loaded first (`threads` caps the runtime's threads)
        status = browser.sw("([threads]) => gammaDetect.toDevice('gamma:device:status', {load: true, threads})", [threads])
        tab_page = browser.context.new_page()
        tab_page.goto(site.page())
        tab_page.wait_for_load_state("load")
        tab = browser.tab_id(tab_page)
        tab_page.wait_for_timeout(1000)   # the page's own start settled
        end_trace = traced(tab_page, TRACE_CATEGORIES) if trace else None
        tab_page.evaluate("() => { window.frames_.length = 0; if (window.long_) window.long_.length = 0; }")
        cpu_before = chromium_threads(Path(profile))
        started = time.perf_counter()
        if scan:
            answer = browser.sw("([tabId]) => gammaDetect.handlers['gamma:scanTab']({tabId, on: true})", [tab])
            assert answer["ok"] and answer["scanning"], answer
        deadline = started + (timeout if scan else idle_s)
        while True:
            state = browser.sw("([id]) => gammaDetect.tabState(id, false)", [tab])
            if scan and state["counts"]["pending"] == 0 and state["counts"]["checked"] >= count:
                break
            if time.perf_counter() > deadline:
                assert not scan, f"the on-device scan of {count} images timed out: {state}"
                break
            time.sleep(0.25)
        seconds = time.perf_counter() - started
        cpu = cpu_delta(cpu_before, chromium_threads(Path(profile)), seconds)
        log = tab_page.evaluate("() => ({frames: window.frames_, long: window.long_})")
        if end_trace:
            trace.write_text(json.dumps({"traceEvents": end_trace()}))
    out = {"what": "scan" if scan else "idle", "seconds": round(seconds, 2), "threads": status["threads"],
           "load_average": [round(x, 2) for x in os.getloadavg()], **frame_stats(log), **cpu}
    if scan:
        out.update(checked=state["counts"]["checked"], errors=state["counts"]["errors"])
    return out


def summary(runs: list[dict]) -> dict:
    """Per kind of run (idle, each build's scan): the runs' dropped frames and longest gaps side by side."""
    kinds: dict[str, list[dict]] = {}
    for r in runs:
        kinds.setdefault(r["label"], []).append(r)
    return {label: {"runs": len(rs), "gaps_over_1.5_intervals": [r["gaps_over_1.5_intervals"] for r in rs],
                    "longest_gap_ms": [r["longest_gap_ms"] for r in rs],
                    "long_animation_frames": [r["long_animation_frames"] for r in rs],
                    "longest_animation_frame_ms": [r["longest_animation_frame_ms"] for r in rs],
                    "seconds": [r["seconds"] for r in rs], "load_average_1min": [r["load_average"][0] for r in rs]}
            for label, rs in kinds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="idle + scan pairs, alternating")
    parser.add_argument("--idle-s", type=float, default=15, help="seconds each idle recording lasts (about a scan's)")
    parser.add_argument("--no-idle", action="store_true", help="scans only")
    parser.add_argument("--compare", action="append", default=[], metavar="LABEL=DIR",
                        help="also scan with the extension in DIR (its vendor/ built) in every run")
    parser.add_argument("--threads", type=int, default=None, help="cap the runtime's inference threads (1 or 2)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a scan may take")
    parser.add_argument("--trace", type=Path, default=None, help="write a Chrome trace of the first scan here")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    builds = [("scan", EXTENSION_DIR)] + [(f"scan {c.split('=', 1)[0]}", Path(c.split("=", 1)[1]).resolve()) for c in args.compare]
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    result = {"command": f"python3 bench/extension_scan_frames.py {' '.join(sys.argv[1:])}".strip(),
              "cpu": cpu_model(), "logical_cores": os.cpu_count(), "simd_flags": simd_flags(),
              "platform": platform.platform(), "chromium": chromium, "load_average_at_start": os.getloadavg(),
              "images": args.images}
    runs = []
    files = {"index.html": page(args.images), **photos(args.images)}
    trace = args.trace
    with serve_files(files) as site:
        for i in range(args.runs):
            order = ([] if args.no_idle else [("idle", EXTENSION_DIR, False)]) + [(label, d, True) for label, d in builds]
            if i % 2:
                order.reverse()   # neither kind always goes first
            for label, extension, scan in order:
                r = record(extension, site, args.images, scan, args.idle_s, args.timeout, trace if scan else None,
                           args.threads)
                if scan:
                    trace = None
                runs.append({"run": i + 1, "label": label, **r})
                print(json.dumps({k: v for k, v in runs[-1].items() if k != "long_animation_frame_detail"}), file=sys.stderr)
    result["summary"] = summary(runs)
    result["runs"] = runs
    print(json.dumps(result["summary"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
