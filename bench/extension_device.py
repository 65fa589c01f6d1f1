"""The extension on device, timed in Debian's chromium (issue 23): model load (cold: IndexedDB empty; cached),
ms per view at batch 1 and 4 with 1 and 2 threads, right-click to verdict for a 1 MP and a 12 MP JPEG (download,
header, decode, resize, views, inference, stitching, heatmap), and the packaged size. Each variant is built into
extension/vendor/ in turn (`node build.js --variant V`) and the configured one is rebuilt at the end.

    (cd extension && npm ci) && python3 bench/extension_device.py --variants fp32 compact fp32 compact --rounds 8 \
        --json bench/extension-device.json
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

PAGE = """<!doctype html><html><body>
<img id="mp1" src="mp1.jpg" width="400" height="300"><img id="mp12" src="mp12.jpg" width="400" height="300">
</body></html>"""


def build(variant: str) -> dict:
    subprocess.run(["node", "build.js", "--variant", variant], cwd=EXTENSION_DIR, check=True, capture_output=True)
    bundle = json.loads((EXTENSION_DIR / "vendor" / "model" / "bundle.json").read_text())
    zips = sorted((EXTENSION_DIR / "dist").glob("*.zip"))
    bundle["zip_bytes"] = zips[-1].stat().st_size
    return bundle


def jpeg(width: int, height: int) -> bytes:
    photo = Image.open(REPO / "tests" / "assets" / "photos" / "street.jpg").convert("RGB").resize((width, height), Image.BICUBIC)
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    return out.getvalue()


def device(browser, type_: str, **extra):
    return browser.sw("([t, e]) => gammaDetect.toDevice(t, e)", [type_, extra])


def measure(variant: str, rounds: int, site) -> dict:
    out = {"variant": variant, **build(variant)}
    with tempfile.TemporaryDirectory() as profile, launch_extension(Path(profile)) as browser:
        browser.configure(mode="device", serverUrl="http://127.0.0.1:9", autoScanSites=[])
        loads = {"cold": [], "cached": []}
        for r in range(rounds):
            if r == 0:
                status = device(browser, "gamma:device:status", load=True)
            else:
                browser.sw("() => gammaDetect.closeDevice()")
                status = device(browser, "gamma:device:status", load=True)
            loads["cold" if status["modelEvents"] == ["fetched"] else "cached"].append(status["loadMs"])
            out["cross_origin_isolated"] = status["crossOriginIsolated"]
        out["load_ms"] = {k: statistics.median(v) for k, v in loads.items() if v}
        out["view_ms"] = {}
        for threads in (1, 2):
            browser.sw("() => gammaDetect.closeDevice()")
            got = device(browser, "gamma:device:status", load=True, threads=threads)["threads"]
            for batch in (1, 4):
                ms = device(browser, "gamma:device:bench", batch=batch, rounds=rounds)["ms"]
                out["view_ms"][f"threads {got}, batch {batch}"] = statistics.median(ms) / batch
        browser.sw("() => gammaDetect.closeDevice()")
        device(browser, "gamma:device:status", load=True)
        page = browser.context.new_page()
        page.goto(site.page())
        page.wait_for_load_state("load")
        out["verdict_ms"] = {}
        for element in ("mp1", "mp12"):
            walls, totals, parts = [], [], None
            for _ in range(rounds):
                browser.sw("() => gammaDetect.cache.clear()")
                started = time.perf_counter()
                browser.sw("""async ([src, pageUrl]) => { const tabs = await chrome.tabs.query({}); const tab = tabs.find((t) => t.url === pageUrl);
                    return gammaDetect.handlers['gamma:analyze']({src, pageUrl, force: true}, {tab, frameId: 0}); }""",
                           [f"{site.url}/{element}.jpg", page.url])
                walls.append((time.perf_counter() - started) * 1000)
                status = device(browser, "gamma:device:status")
                totals.append(status["lastCheckMs"])
            result = device(browser, "gamma:device:analyze", src=f"{site.url}/{element}.jpg")
            out["verdict_ms"][element] = {"wall": statistics.median(walls), "runtime": statistics.median(totals),
                                          "views": result["model"]["on_device"]["views"], "parts": result["timings"]}
        page.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the results, with the machine, here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    configured = json.loads((EXTENSION_DIR / "package.json").read_text())["config"]["variant"]
    files = {"index.html": PAGE.encode(), "mp1.jpg": jpeg(1155, 866), "mp12.jpg": jpeg(4000, 3000)}
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"command: python3 bench/extension_device.py {' '.join(sys.argv[1:])}")
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical cores; {' '.join(simd_flags())}); {platform.platform()}; {chromium}")
    results = []
    try:
        with serve_files(files) as site:
            for variant in args.variants:
                results.append(measure(variant, args.rounds, site))
    finally:
        build(configured)
    for r in results:
        print(f"\n{r['variant']}: {r['file']} ({r['bytes'] / 1048576:.1f} MB), onnxruntime-web {r['onnxruntime_web']}, "
              f"zip {r['zip_bytes'] / 1048576:.1f} MB, crossOriginIsolated {r['cross_origin_isolated']}")
        print(f"  model load: cold {r['load_ms'].get('cold')} ms, cached {r['load_ms'].get('cached')} ms (median)")
        for key, ms in r["view_ms"].items():
            print(f"  ms per view, {key}: {ms:.1f}")
        for element, v in r["verdict_ms"].items():
            print(f"  right-click to verdict, {element.replace('mp', '')} MP JPEG: {v['wall']:.0f} ms "
                  f"(runtime {v['runtime']:.0f} ms, {v['views']} views; one run: {v['parts']})")
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps({"command": f"python3 bench/extension_device.py {' '.join(sys.argv[1:])}",
                                         "cpu": cpu_model(), "logical_cores": os.cpu_count(), "simd_flags": simd_flags(),
                                         "chromium": chromium, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                         "load_average_before": load_before, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
