"""One ``Detector`` over any exported artifact, chosen from its manifest.

    detector = load_detector()                 # the default model (models/default), backend "auto"
    predictions = detector.predict([rgb, ...])  # decoded HxWx3 uint8 images of any size
    detector.result(predictions[0])             # {"ai_probability", "verdict", "mask_fraction", "sources"}

The manifest's crop policy turns each image into fixed-size views; all views of
all images run together in chunks of the maximum batch; per image the view
probabilities combine by the manifest's rule, and the head-1 and head-2 maps are
stitched back at the policy's working resolution. The graphs take uint8 views and return
calibrated outputs, so no float preprocessing happens here.

Serving backends: ONNX Runtime (``onnxruntime-cpu``, ``onnxruntime-cuda``) and
TensorRT (``tensorrt``). The research backends that need torch and the model code
(``pytorch``, ``pytorch-cuda``, ``torch-tensorrt``) live on the build side:
``gamma_detect.export.load_detector`` accepts every backend and hands the
serving ones to :func:`load_detector` here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..abstain import AI_SIDE, AbstentionRule, reencode_jpeg, view_spread
from ..contract import AI_CONTENT_EXTENTS, MAX_BATCH_VIEWS, UNCERTAIN
from ..crops import CropPlan, Tiles
from ..decision import MaskCalibration, read_decision, region_evidence, strongest_region
from ..verdict import verdict
from .manifest import Artifact, Manifest, ManifestError, check_engine_compatible, manifest_path
from .selfcheck import SelfCheckFailed, SelfCheckReport, needs_check, verify

log = logging.getLogger("gamma.runtime")

SERVING_BACKENDS = ("auto", "onnxruntime", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt")
BUILD_SIDE_BACKENDS = ("pytorch", "pytorch-cuda", "torch-tensorrt")
BACKENDS = SERVING_BACKENDS + BUILD_SIDE_BACKENDS
EPS = 1e-7

# How per-view calibrated probabilities become one image probability (recorded in every manifest). The graph
# outputs p_i = sigmoid(logit_i / T); the crop policy averages view logits, so the image probability is
# sigmoid(mean_i logit(clip(p_i))) = sigmoid(mean_i logit_i / T) (exact up to the clip).
COMBINE_RULE = {
    "name": "mean_logit",
    "formula": "sigmoid(mean_i(log(p_i / (1 - p_i)))) with p_i clipped to [eps, 1 - eps]",
    "eps": EPS,
    "equivalent_to": "sigmoid(mean_i(logit_i) / temperature)",
    "maps": "per-view head-1 and head-2 maps are upsampled bilinearly (half-pixel centres) to the view size and "
            "stitched back at the crop policy's working resolution with feathered weights (the global view "
            "under the grid crops)",
}
SHARE_SIDE = 128
# The head-1 map's longest side: the server stores heatmaps at most this size (its heatmap_side; the overlay is
# resized to the image when rendered), and the network's map has one cell per 8 px of a 224 px view, so a
# 672 x 1008 working image carries 84 x 126 cells of information: a larger map adds no detail, only time.
MASK_SIDE = 512


class BackendUnavailable(RuntimeError):
    """The backend exists but not in this package (the torch backends are the build side's)."""


class Session(Protocol):
    """What a backend provides: the graph's three outputs for a chunk of uint8 views."""

    max_batch: int

    def run(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass
class Prediction:
    probability: float               # calibrated, combined over views
    mask: np.ndarray                 # (h, w) float32 head-1 probability: the working resolution, <= mask_side
    source_shares: dict[str, float]  # share of image pixels per head-2 argmax class, sums to 1
    views: int
    view_spread: float = 0.0         # std of the calibrated view logits (the abstention's first check)
    uncertain_reason: str | None = None  # set when the abstention rule turned an AI-side verdict into `uncertain`
    global_probability: float | None = None  # the mean view logit's probability alone (None: the same as probability)

    @property
    def mask_fraction(self) -> float:
        """Share of pixels whose head-1 probability exceeds 0.5 (at the working resolution: the same share)."""
        return float((self.mask > 0.5).mean()) if self.mask.size else 0.0


def default_model_path() -> Path:
    from ..models import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR


def _logit(probabilities) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def combine_probabilities(probabilities: np.ndarray) -> float:
    """The manifest's rule: sigmoid of the mean view logit (the graphs output calibrated view probabilities)."""
    return float(1.0 / (1.0 + np.exp(-float(np.mean(_logit(probabilities))))))


class Detector:
    """Scores decoded images with one artifact on one backend, as its manifest prescribes."""

    def __init__(self, manifest: Manifest, artifact: Artifact, session: Session, backend: str, selection: str = ""):
        self.manifest = manifest
        self.artifact = artifact
        self.session = session
        self.backend = backend
        self.selection = selection or f"{backend}: requested"
        self.policy = manifest.policy
        self.bands = list(manifest.verdict_bands)
        self.abstention = AbstentionRule.from_dict(manifest.raw.get("abstention"))
        # How view scores and region evidence make the image score, and the head-1 map's level (manifest; absent:
        # the mean view logit alone and the raw map, as 0.3.0 scored).
        self.decision = read_decision(manifest.raw.get("decision"))
        self.mask_calibration = MaskCalibration.from_dict(manifest.raw.get("mask_calibration"))
        self.classes = list(manifest.source_classes)
        self.max_batch = int(min(getattr(session, "max_batch", MAX_BATCH_VIEWS), manifest.max_batch))
        self.mask_side = MASK_SIDE   # Prediction.mask's longest side at most (the server sets its heatmap side)
        self.model_info = {"name": manifest.name, "version": manifest.version, "digest": artifact.sha256,
                           "backend": backend, "variant": artifact.variant}
        self.self_check: SelfCheckReport | None = None  # set by load_detector for reduced-precision artifacts
        self.fallback: dict | None = None               # set when a requested variant failed it and FP32 serves

    def __repr__(self) -> str:
        return f"Detector({self.manifest.name} {self.manifest.version} {self.artifact.file} on {self.backend})"

    # The steps of predict, public so that tests and benchmarks can time or check each one.
    def tiles(self, images: Sequence[np.ndarray], native: Sequence[tuple[int, int] | None] | None = None) -> list[Tiles]:
        """Every image at its working resolution with its crop plan; raises ImageTooSmall (or ValueError) before
        anything runs. ``native[i]``: image i's own (height, width) when the decoder handed it over reduced."""
        if native is not None and len(native) != len(images):
            raise ValueError(f"native sizes: {len(native)} for {len(images)} images")
        out = []
        for i, image in enumerate(images):
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected HxWx3 uint8 RGB images, got {image.dtype} {image.shape}")
            out.append(self.policy.tile(image, native[i] if native is not None else None))
        return out

    def views(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, CropPlan]]:
        """Every image's views of every stage, and its plan."""
        return [(t.views(), t.plan) for t in self.tiles(images)]

    def predict(self, images: Sequence[np.ndarray], *, native: Sequence[tuple[int, int] | None] | None = None,
                detail: bool = False) -> list[Prediction]:
        """One Prediction per image. The views of all images run together in chunks of the maximum batch. A
        staged crop policy runs stage 0 of every image first, then the rest of the grid for the images whose
        stage-0 decision falls in the policy's refine bands, or for all with ``detail`` (a detailed map)."""
        if len(images) == 0:
            return []
        tiles = self.tiles(images, native)
        staged = self.policy.staged
        outputs = self._run([t.views(0 if staged else None) for t in tiles])
        if staged:
            refine = [i for i, (t, out) in enumerate(zip(tiles, outputs)) if t.plan.first_views < t.plan.views
                      and (detail or self.policy.refines(self.decide(t.plan, *out)[0], self.bands))]
            for i, more in zip(refine, self._run([tiles[i].views(1) for i in refine])):
                outputs[i] = tuple(np.concatenate([a, b]) for a, b in zip(outputs[i], more))
        predictions = [self._assemble(t.plan, *out) for t, out in zip(tiles, outputs)]
        self._abstain(images, native, predictions)
        return predictions

    def _abstain(self, images: Sequence[np.ndarray], native, predictions: list[Prediction]) -> None:
        """The manifest's abstention rule (gamma_detect/abstain.py), as the protocol applied it when fitting the
        bands: AI-side verdicts whose views disagree, or whose score falls under a JPEG re-encoding, become
        `uncertain`. Only those images are scored a second time (every view of the re-encoded copy)."""
        recheck = []
        for i, p in enumerate(predictions):
            band = verdict(p.probability, self.bands)
            p.uncertain_reason = self.abstention.reason(band, p.view_spread)
            if p.uncertain_reason is None and band in AI_SIDE and self.abstention.needs_reencode:
                recheck.append(i)
        if not recheck:
            return
        copies = [reencode_jpeg(np.asarray(images[i]), self.abstention.quality) for i in recheck]
        tiles = self.tiles(copies, [native[i] for i in recheck] if native is not None else None)
        for i, out in zip(recheck, self._run([t.views() for t in tiles])):
            p = predictions[i]
            shift = _logit(p.probability) - _logit(combine_probabilities(out[0]))
            p.uncertain_reason = self.abstention.reason(verdict(p.probability, self.bands), p.view_spread, shift)

    def _run(self, views: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The graph's outputs per image for each image's views, all run together in chunks of the maximum
        batch (the outputs are the heads' 28 px maps: holding a batch's is cheap)."""
        if not views:
            return []
        stacked = np.concatenate(views)
        parts = [self.session.run(np.ascontiguousarray(stacked[i:i + self.max_batch]))
                 for i in range(0, len(stacked), self.max_batch)]
        merged = [np.concatenate([part[k] for part in parts]) for k in range(3)]
        bounds = np.cumsum([0] + [len(v) for v in views])
        return [tuple(m[lo:hi] for m in merged) for lo, hi in zip(bounds[:-1], bounds[1:])]

    def decide(self, plan: CropPlan, probabilities, masks, sources) -> tuple[float, float]:
        """(image probability by the manifest's decision, the mean view logit's alone) from the views that ran."""
        logits = _logit(probabilities)
        alone = float(1.0 / (1.0 + np.exp(-float(np.mean(logits)))))
        if self.decision.plain:
            return alone, alone
        evidence = region_evidence(self.policy, plan, masks, sources, self.decision)[0] \
            if self.decision.uses_regions else None
        z = self.decision.score(logits, evidence)
        return float(1.0 / (1.0 + np.exp(-z))), alone

    def _assemble(self, plan: CropPlan, probabilities, masks, sources) -> Prediction:
        mask = self.mask_calibration.apply(self.policy.stitch(masks, plan, max_side=self.mask_side))
        # Source shares: the head-2 maps stitched like the mask, but capped at SHARE_SIDE px: a share of pixels
        # needs no finer map (at 512 px these stitches were a quarter of the pipeline's time; on 24 starter
        # images the shares moved by at most 0.007). All classes in one stitch, channels last.
        stitched = self.policy.stitch(np.moveaxis(sources, 1, -1), plan, max_side=SHARE_SIDE)
        counts = np.bincount(stitched.argmax(axis=-1).ravel(), minlength=len(self.classes)).astype(np.float64)
        shares = counts / counts.sum()
        probability, alone = self.decide(plan, probabilities, masks, sources)
        return Prediction(probability, mask, {name: float(s) for name, s in zip(self.classes, shares)},
                          len(probabilities), view_spread(_logit(probabilities)), global_probability=alone)

    def result(self, prediction: Prediction) -> dict:
        """The stable JSON fields of a result (the server adds model, image, heatmap_url, timings, cached).
        ``verdict_reason`` is `region` when the region evidence raised the verdict into an AI band that the mean
        view logit alone did not reach (`pixels` otherwise; provenance evidence may override it later)."""
        band = UNCERTAIN if prediction.uncertain_reason else verdict(prediction.probability, self.bands)
        alone = prediction.probability if prediction.global_probability is None else prediction.global_probability
        region_decided = band in AI_SIDE and verdict(alone, self.bands) not in AI_SIDE
        extent = AI_CONTENT_EXTENTS[2] if band not in AI_SIDE else AI_CONTENT_EXTENTS[1 if region_decided else 0]
        return {"ai_probability": round(prediction.probability, 4),
                "verdict": band,
                "uncertain_reason": prediction.uncertain_reason,
                "mask_fraction": round(prediction.mask_fraction, 4),
                "sources": {k: round(v, 4) for k, v in prediction.source_shares.items()},
                "verdict_reason": "region" if region_decided else "pixels",
                "ai_content": {"extent": extent, "region": strongest_region(prediction.mask)}}


# --------------------------------------------------------------------------- loading
def locate(manifest_or_path: str | Path | None, backend: str, variant: str) -> tuple[Manifest, str, str]:
    """The manifest, backend and variant a load asks for: ``None`` is the default model; naming an artifact
    file picks that file's variant and, for ``auto``, the backend its format needs."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    path = Path(manifest_or_path) if manifest_or_path is not None else default_model_path()
    manifest = Manifest.read(path)
    if path.is_file() and manifest_path(path) != path:
        artifact = manifest.artifact(file=path.name)
        variant = artifact.variant
        if backend == "auto":
            backend = {"checkpoint": "pytorch", "tensorrt-engine": "tensorrt",
                       "torch-tensorrt": "torch-tensorrt"}.get(artifact.format, "auto")
    return manifest, backend, variant


def load_detector(manifest_or_path: str | Path | None = None, backend: str = "auto", variant: str = "fp32", *,
                  threads: int | None = None, self_check: bool = True, fallback_to_fp32: bool = False) -> Detector:
    """A Detector for a model folder, its manifest.json, or one artifact file beside its manifest.

    ``None`` is the default model (models/default). ``backend="auto"`` picks TensorRT when an engine built
    for this GPU and TensorRT version is listed, then ONNX Runtime with CUDA, then ONNX Runtime on CPU, and
    records why in ``detector.selection`` (also logged). ``variant`` picks the ONNX file (fp32, int8, fp16, compact);
    naming an artifact file picks that file whatever ``variant`` says. Every artifact's sha256 is checked
    against the manifest before it is loaded.

    A reduced-precision artifact (INT8, FP16) must first reproduce FP32 on the manifest's self-check views on
    this machine (``selfcheck.py``): if it strays past its bound, :class:`SelfCheckFailed` is raised, or, with
    ``fallback_to_fp32``, the FP32 artifact is served and ``detector.fallback`` and ``model_info["fallback"]``
    say why. ``self_check=False`` skips the check (acceptance tests measure the variant itself).
    """
    manifest, backend, variant = locate(manifest_or_path, backend, variant)
    if backend in BUILD_SIDE_BACKENDS:
        raise BackendUnavailable(f"backend {backend} needs torch and the model code: load it with "
                                 "gamma_detect.export.load_detector (pip install '.[train]'), or choose one of "
                                 f"{', '.join(SERVING_BACKENDS)}")
    detector = _select(manifest, backend, variant, threads)
    if self_check and needs_check(detector.artifact):
        try:
            detector.self_check = verify(manifest, detector.artifact, detector.session.run)
        except SelfCheckFailed as exc:
            if not fallback_to_fp32:
                raise
            # Never serve a variant that is wrong on this machine: FP32 instead, and say so wherever the model shows.
            log.warning("%s -- serving fp32 instead", exc)
            detector = _select(manifest, backend, "fp32", threads)
            detector.fallback = {"requested_variant": variant, "reason": str(exc),
                                 "self_check": exc.report.to_dict() if exc.report else None}
            detector.model_info["fallback"] = {"requested_variant": variant, "reason": "self_check_failed"}
    log.info("gamma detector: %s", detector.selection)
    return detector


def _select(manifest: Manifest, backend: str, variant: str, threads: int | None) -> Detector:
    from .onnxruntime import ort_has_cuda

    reasons = []
    if backend == "auto":
        engine, why = matching_engine(manifest)
        if engine is not None:
            try:
                return _tensorrt(manifest, engine, f"tensorrt: {why}")
            except Exception as exc:  # noqa: BLE001 - fall through to ONNX Runtime, saying why
                reasons.append(f"TensorRT engine {engine.file} failed to load ({exc})")
        else:
            reasons.append(why)
        if ort_has_cuda():
            try:
                return _onnxruntime(manifest, variant, "cuda", threads,
                                    "onnxruntime-cuda: " + "; ".join(reasons + ["CUDA provider available"]))
            except RuntimeError as exc:
                reasons.append(f"ONNX Runtime CUDA unusable ({exc})")
        else:
            reasons.append("ONNX Runtime has no CUDA provider")
        return _onnxruntime(manifest, variant, "cpu", threads, "onnxruntime-cpu: " + "; ".join(reasons))
    if backend == "onnxruntime":
        backend = "onnxruntime-cuda" if ort_has_cuda() else "onnxruntime-cpu"
    if backend in ("onnxruntime-cpu", "onnxruntime-cuda"):
        return _onnxruntime(manifest, variant, backend.rsplit("-", 1)[1], threads, f"{backend}: requested")
    engine, why = matching_engine(manifest, strict=True)
    return _tensorrt(manifest, engine, f"tensorrt: requested; {why}")


def _onnxruntime(manifest: Manifest, variant: str, device: str, threads: int | None, selection: str) -> Detector:
    from .onnxruntime import OrtSession

    artifact = manifest.artifact(variant=variant, formats={"onnx"})
    session = OrtSession(manifest.verified_path(artifact), device, threads)
    return Detector(manifest, artifact, session, f"onnxruntime-{device}", selection)


def _tensorrt(manifest: Manifest, artifact: Artifact, selection: str) -> Detector:
    from .tensorrt import PROFILE, TensorRTSession

    session = TensorRTSession(manifest.verified_path(artifact),
                              int(artifact.entry.get("profile", {}).get("max", PROFILE["max"])))
    return Detector(manifest, artifact, session, "tensorrt", selection)


def matching_engine(manifest: Manifest, strict: bool = False) -> tuple[Artifact | None, str]:
    """The TensorRT engine built for this GPU and TensorRT version, if the manifest lists one."""
    engines = [a for a in manifest.artifacts if a.format == "tensorrt-engine"]
    if not engines:
        if strict:
            raise ManifestError("backend tensorrt: the manifest lists no TensorRT engine; build one on this machine "
                                "with `gamma export CHECKPOINT --to tensorrt`")
        return None, "no TensorRT engine in the manifest"
    from .tensorrt import gpu_identity, tensorrt_version

    version, gpu = tensorrt_version(), gpu_identity()
    problems = []
    for artifact in engines:
        try:
            check_engine_compatible(artifact.entry, gpu, version)
            return artifact, f"engine {artifact.file} matches {gpu['name']} and TensorRT {version}"
        except ManifestError as exc:
            problems.append(str(exc))
    if strict:
        raise ManifestError("; ".join(problems))
    return None, "no usable TensorRT engine (" + "; ".join(problems) + ")"
