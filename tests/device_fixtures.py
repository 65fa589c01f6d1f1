"""What the Python side computes, for the checks of the extension's on-device port (test_extension_device_port.py
writes them to a temporary file and runs extension/test/device_port_check.js over it):

resize: gamma_detect.crops.resize (OpenCV) on random uint8 images and float32 maps, shrinking and
enlarging, integer and non-integer factors; plans: CropPolicy.plan of the shipped manifest for many
sizes; stitch: CropPolicy.stitch of random view maps for a few plans at the mask and share sides.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from gamma_detect import decision as fusion
from gamma_detect.crops import CropPolicy, resize
from gamma_detect.runtime.evidence.reader import read_evidence
from gamma_detect.runtime.detector import MASK_SIDE, SHARE_SIDE
from gamma_detect.runtime.manifest import Manifest

REPO = Path(__file__).resolve().parents[1]


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def _evidence_files() -> dict[str, bytes]:
    """The evidence reader's fixtures (generator parameters, camera EXIF) and XMP packets written here."""
    import io

    from PIL import Image

    from evidence_support import textured, xmp_packet

    files = {p.name: p.read_bytes() for d in ("sd_parsers", "piexif")
             for p in sorted((REPO / "tests" / "assets" / "evidence" / d).glob("*")) if p.suffix in (".png", ".jpg")}
    for name, fields in (("xmp-ai.jpg", 'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/'
                                         'trainedAlgorithmicMedia">'),
                         ("xmp-edited.jpg", "><Iptc4xmpExt:DigitalSourceType>compositeWithTrainedAlgorithmicMedia"
                                            "</Iptc4xmpExt:DigitalSourceType>"),
                         ("xmp-tool.jpg", 'xmp:CreatorTool="Photo Editor 3">')):
        for fmt in ("JPEG", "WEBP"):   # exifr finds no WebP metadata: the port takes its RIFF chunks itself
            out = io.BytesIO()
            Image.fromarray(textured(96, 96)).save(out, fmt, xmp=xmp_packet(fields))
            files[name.replace(".jpg", f".{fmt.lower()}")] = out.getvalue()
    # EXIF in WebP: a camera's, and AUTOMATIC1111's parameters in UserComment (as the JPEG fixture carries them)
    for name, source in (("camera.webp", "piexif/r_canon.jpg"), ("automatic1111.webp", "sd_parsers/automatic1111_cropped.jpg")):
        out = io.BytesIO()
        exif = Image.open(REPO / "tests" / "assets" / "evidence" / source).getexif()
        Image.fromarray(textured(96, 96)).save(out, "WEBP", exif=exif.tobytes())
        files[name] = out.getvalue()
    return files


def write_fixtures(path: Path) -> None:
    rng = np.random.default_rng(23)
    resizes = []
    cases = [((61, 47), (224, 224)), ((97, 131), (64, 88)), ((448, 336), (224, 168)),
             ((450, 300), (150, 100)), ((350, 250), (224, 160)), ((500, 376), (336, 252)), ((240, 230), (224, 224)), ((300, 300), (224, 224)), ((2000, 1500), (1000, 750)),
             ((150, 90), (224, 134))]
    for (w, h), (dw, dh) in cases:
        for channels in (3,):
            src = rng.integers(0, 256, (h, w, channels), np.uint8)
            # smooth content too: real photos are not noise, and rounding ties show up on flat areas
            src[: h // 2] = (np.linspace(0, 255, w)[None, :, None] * np.ones((h // 2, 1, channels))).astype(np.uint8)
            resizes.append({"width": w, "height": h, "channels": channels, "dtype": "uint8", "to": [dw, dh],
                            "mode": "area" if dw * dh < w * h else "linear",
                            "src": b64(src), "out": b64(resize(src, dw, dh))})
    for (m, side, channels) in ((28, 114, 1), (28, 224, 1), (28, 14, 4), (28, 20, 1), (28, 28, 4), (28, 57, 4)):
        src = rng.random((m, m, channels), np.float32)
        out = resize(src, side, side).reshape(side, side, channels)
        resizes.append({"width": m, "height": m, "channels": channels, "dtype": "float32", "to": [side, side],
                        "mode": "area" if side < m else "linear",
                        "src": b64(src), "out": b64(out)})
    manifest = Manifest.read(REPO / "models" / "default")
    policy = manifest.policy
    plans = []
    for w, h in ((64, 64), (100, 80), (224, 224), (300, 200), (256, 256), (640, 480), (672, 1008), (1024, 768),
                 (1500, 1000), (2000, 1500), (4000, 3000), (4032, 3024), (1080, 1920), (5000, 400), (100, 3000)):
        plan = policy.plan(h, w)
        plans.append({"width": w, "height": h, "boxes": plan.boxes, "global_box": list(plan.global_box),
                      "first": plan.first, "working": list(plan.working), "scale": plan.scale})
    stitches = []
    for w, h in ((300, 200), (640, 480), (2000, 1500), (100, 80)):
        plan = policy.plan(h, w)
        masks = rng.random((plan.views, 28, 28), np.float32)
        sources = rng.random((plan.views, 28, 28, 5), np.float32)
        for views in sorted({plan.first_views, plan.views}):
            mask = policy.stitch(masks[:views], plan, max_side=MASK_SIDE)
            shares = policy.stitch(sources[:views], plan, max_side=SHARE_SIDE)
            stitches.append({"width": w, "height": h, "views": views, "masks": b64(masks[:views]),
                             "sources": b64(sources[:views]), "mask": b64(mask), "mask_shape": list(mask.shape),
                             "shares": b64(shares), "shares_shape": list(shares.shape)})
    # The fused decision (issue 21's `decision` section) on the same maps: its region evidence, score and the
    # strongest region of the calibrated map.
    rule = {"rule": "logistic_fusion", "name": "test", "features": list(fusion.FEATURES), "weights": [0.9, 0.2, 0.5, -0.3, 0.4, 0.25],
            "bias": -0.7, "map_side": 96, "top_share": 0.05}
    calibration = {"bias": 0.8, "temperature": 1.3}
    decided = fusion.Decision.from_dict(rule)
    regions = []
    for w, h in ((640, 480), (300, 200)):
        plan = policy.plan(h, w)
        y, x = np.mgrid[0:28, 0:28] / 27.0
        masks = np.stack([np.exp(-((x - 0.3 - 0.04 * v) ** 2 + (y - 0.6) ** 2) * 12) for v in range(plan.views)]).astype(np.float32)
        sources = rng.random((plan.views, 5, 28, 28), np.float32)
        probabilities = rng.uniform(0.05, 0.95, plan.views)
        evidence, _ = fusion.region_evidence(policy, plan, masks, np.moveaxis(sources, 1, -1).transpose(0, 3, 1, 2), decided)
        logits = np.log(probabilities) - np.log1p(-probabilities)
        z = decided.score(logits, evidence)
        stitched = fusion.MaskCalibration.from_dict(calibration).apply(policy.stitch(masks, plan, max_side=MASK_SIDE))
        # Two rules (`either`) over the same evidence: the region rule's `ai` edge under its logit (it raises) and
        # over; then its `likely_ai` edge under its logit, its `ai` edge over (it raises along the linear map).
        region = fusion.Decision("region", ("mask_peak_logit", "generated_share_logit"), np.array([0.8, 0.3]), 0.2,
                                 np.inf, np.inf, 96)
        r = region.score(logits, evidence)
        either = []
        for likely, edge in ((np.inf, r - 0.4), (np.inf, r + 0.4), (r - 0.3, r + 0.4)):
            rules = fusion.Either(replace(decided, likely_ai_edge=z + 0.5, ai_edge=z + 1.0),
                                  replace(region, likely_ai_edge=likely, ai_edge=edge))
            either.append({"decision": rules.to_dict(), "probability": 1 / (1 + np.exp(-rules.score(logits, evidence)))})
        regions.append({"width": w, "height": h, "masks": b64(masks), "sources": b64(np.moveaxis(sources, 1, -1)),
                        "probabilities": probabilities.tolist(), "evidence": evidence.tolist(),
                        "probability": 1 / (1 + np.exp(-z)), "region": fusion.strongest_region(stitched),
                        "mask_fraction": float((stitched > 0.5).mean()), "either": either})
    evidence = [{"name": name, "data": b64(np.frombuffer(data, np.uint8)),
                 "items": [{k: e.to_dict()[k] for k in ("source", "status", "strength", "reason", "summary")}
                           for e in read_evidence(data)]} for name, data in _evidence_files().items()]
    constants = {"evidence_eps": fusion.EVIDENCE_EPS, "region_classes": list(fusion.REGION_CLASSES),
                 "mask_side": MASK_SIDE, "share_side": SHARE_SIDE}
    path.write_text(json.dumps({"policy": manifest.raw["crop_policy"], "manifest": manifest.raw, "constants": constants,
                               "decision": rule, "evidence": evidence, "mask_calibration": calibration, "regions": regions,
                               "resize": resizes, "plans": plans, "stitch": stitches}))
