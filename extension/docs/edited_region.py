"""docs/edited-region.png: the extension on a photo with an AI-edited region, checked on this device.

Debian's chromium (Playwright) with the unpacked extension in on-device mode (its bundled model: run
`npm ci && npm run build` in extension/ first), no gamma server: the tests' edited photo (robin.jpg with a box
of qwen-image.webp Poisson-cloned in by gamma_detect.train.local_edit, tests/conftest_extension.py
edited_photo) is right-clicked, and the view is saved once the region's outline is drawn, clipped to the
picture and its panel (in 256 colours if that is what keeps it under 300 KB).

    python3 extension/docs/edited_region.py [--out extension/docs/edited-region.png]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from conftest_extension import EXTENSION_DIR, add_edit_page, launch_extension, serve_files  # noqa: E402

# A window too short for the panel below or above the picture: it opens at the picture's side.
VIEWPORT = {"width": 1000, "height": 560}
MARGIN = 16
MAX_BYTES = 300_000


def take(out: Path) -> dict:
    if not (EXTENSION_DIR / "vendor" / "model" / "bundle.json").is_file():
        sys.exit("the on-device runtime is not built: run `npm ci && npm run build` in extension/")
    with serve_files({}) as site, tempfile.TemporaryDirectory() as profile, launch_extension(Path(profile)) as browser:
        browser.configure(mode="device", serverUrl="http://127.0.0.1:9", apiKey="", autoScanSites=[])
        page = browser.context.new_page()
        page.set_viewport_size(VIEWPORT)
        page.goto(add_edit_page(site))
        # the panel's milliseconds are a warm check's: the model loaded and run once (on the untouched photo) before
        browser.sw("(src) => gammaDetect.toDevice('gamma:device:analyze', {src})", site.page("photos/robin.jpg"))
        page.wait_for_load_state("load")
        answer = browser.context_click(page, "#edited")
        assert answer and answer["ok"] and answer["found"], answer

        def edited(state: dict) -> dict:
            return next((e for e in state.get("images", []) if e.get("elementId") == "edited"), {})

        def settled(state: dict) -> bool:
            e = edited(state)
            if e.get("state") in ("error", "skipped") or (e.get("state") == "done" and not e.get("region")):
                return True
            return bool(((e.get("heatmap") or {}).get("outline") or {}).get("png"))
        entry = edited(browser.wait_for(page, settled, timeout=120, what="the edited photo's outline"))
        if entry["state"] != "done" or not entry["region"]:
            sys.exit(f"no region outlined on the edited photo ({entry['state']}: {entry.get('error') or entry.get('region')}): "
                     "pick an edit the model marks (tests/conftest_extension.py edited_photo)")
        page.mouse.move(0, 0)
        boxes = [entry["imageRect"], entry["panel"]["rect"]]
        x0 = max(0, min(b["x"] for b in boxes) - MARGIN)
        y0 = max(0, min(b["y"] for b in boxes) - MARGIN)
        x1 = min(VIEWPORT["width"], max(b["x"] + b["width"] for b in boxes) + MARGIN)
        y1 = min(VIEWPORT["height"], max(b["y"] + b["height"] for b in boxes) + MARGIN)
        png = page.screenshot(clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    shot.save(out, "PNG", optimize=True)
    if out.stat().st_size > MAX_BYTES:
        shot.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, "PNG", optimize=True)
    size = out.stat().st_size
    if size > MAX_BYTES:
        sys.exit(f"{out} is {size} bytes, over {MAX_BYTES}: shrink the view")
    return {"file": str(out), "bytes": size, "verdict": entry["verdict"], "probability": entry["probability"],
            "region": entry["region"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=EXTENSION_DIR / "docs" / "edited-region.png")
    print(take(parser.parse_args().out))


if __name__ == "__main__":
    main()
