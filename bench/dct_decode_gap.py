"""`python3 bench/dct_decode_gap.py`: what decoding a large JPEG whole (the browser) instead of at the server's
reduced DCT scale changes in the result (issue 23: "say what the browser does instead and what it changes").

Every starter JPEG the server decodes at a reduced DCT scale, scored twice by the Python runtime with the same
artifact: the server's decode (``gamma_detect.server.decode.decode``, JPEG DCT scaling to the crop policy's
working size) and the whole image decoded by Pillow, as the browser decodes it. Per image: |dp| between the two
and the IoU of their head-1 masks (> 0.5) where either marks at least 1 % of the pixels, the parity test's rule.

    python3 bench/dct_decode_gap.py --variant compact --json bench/dct-decode-gap.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from gamma_detect.export.bench import cpu_model, simd_flags
from gamma_detect.images import to_rgb
from gamma_detect.runtime import load_detector
from gamma_detect.server.decode import decode

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="compact")
    parser.add_argument("--images", type=Path, default=REPO / "work" / "starter" / "images")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    detector = load_detector(None, "onnxruntime-cpu", args.variant)
    rows = []
    for path in tqdm(sorted(args.images.glob("*.jpg")), desc="starter JPEGs", unit="img"):
        data = path.read_bytes()
        reduced, info = decode(data, max_pixels=50_000_000, work=detector.policy.working_size)
        native = (info.height, info.width)
        if reduced.shape[:2] == native:
            continue  # decoded whole by the server too: nothing differs
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            whole = to_rgb(image)
        server, browser = (detector.predict([x], native=[native])[0] for x in (reduced, whole))
        a, b = server.mask > 0.5, browser.mask > 0.5
        union = int(np.logical_or(a, b).sum())
        rows.append({"image": path.name, "size": f"{info.width}x{info.height}",
                     "scale": f"1/{round(info.width / reduced.shape[1])}",
                     "p_server": round(server.probability, 4), "p_whole": round(browser.probability, 4),
                     "diff": round(abs(server.probability - browser.probability), 4),
                     "marked": round(max(a.mean(), b.mean()), 4),
                     "iou": round(float(np.logical_and(a, b).sum() / union), 3) if union else 1.0})
    diffs = np.array([r["diff"] for r in rows])
    ious = np.array([r["iou"] for r in rows if r["marked"] >= 0.01])
    summary = {"images": len(rows), "diff_median": float(np.median(diffs)), "diff_p95": float(np.percentile(diffs, 95)),
               "diff_max": float(diffs.max()), "within_0.02": float(np.mean(diffs <= 0.02)),
               "marked_images": int(len(ious)), "iou_min": float(ious.min()) if len(ious) else None,
               "iou_median": float(np.median(ious)) if len(ious) else None,
               "iou_at_least_0.9": float(np.mean(ious >= 0.9)) if len(ious) else None}
    result = {"command": f"python3 bench/dct_decode_gap.py {' '.join(sys.argv[1:])}".strip(), "cpu": cpu_model(),
              "logical_cores": os.cpu_count(), "simd_flags": simd_flags(), "variant": args.variant,
              "summary": summary, "rows": rows}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
