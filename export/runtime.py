"""Serving side: one ``Detector`` over any exported artifact, chosen from its manifest.

    detector = load_detector()                 # the default model (models/default), backend "auto"
    predictions = detector.predict([rgb, ...])  # decoded HxWx3 uint8 images of any size
    detector.result(predictions[0])             # {"ai_probability", "verdict", "mask_fraction", "sources"}

The manifest's crop policy turns each image into fixed-size views; all views of
all images run together in chunks of the maximum batch; per image the view
probabilities combine by the manifest's rule, and the head-1 and head-2 maps are
stitched back at image resolution. The graphs take uint8 views and return
calibrated outputs, so no float preprocessing happens here.

Backends: ONNX Runtime (``onnxruntime-cpu``, ``onnxruntime-cuda``), TensorRT
(``tensorrt``), and for research PyTorch (``pytorch``, ``pytorch-cuda``) and
Torch-TensorRT (``torch-tensorrt``). Torch and the training code are imported
only inside those backends, and only when they are chosen: importing this module,
loading an ONNX detector and predicting never imports torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..crops import CropPlan, CropPolicy, ImageTooSmall
from ..verdict import verdict
from .manifest import (ManifestError, check_engine_compatible, find_artifact, manifest_path, read_manifest,
                       verify_artifact)

log = logging.getLogger("gamma.export.runtime")

__all__ = ["BACKENDS", "Detector", "ImageTooSmall", "Prediction", "load_detector", "default_model_path"]

BACKENDS = ("auto", "onnxruntime", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt", "pytorch", "pytorch-cuda",
            "torch-tensorrt")
ONNX_VARIANTS = ("fp32", "int8", "fp16")
EPS = 1e-7


@dataclass
class Prediction:
    probability: float               # calibrated, combined over views
    mask: np.ndarray                 # (H, W) float32 head-1 probability at image resolution
    source_shares: dict[str, float]  # share of image pixels per head-2 argmax class, sums to 1
    views: int
    extras: dict = field(default_factory=dict, repr=False)  # per-view probabilities (diagnostics)

    @property
    def mask_fraction(self) -> float:
        """Share of pixels whose head-1 probability exceeds 0.5."""
        return float((self.mask > 0.5).mean()) if self.mask.size else 0.0


def default_model_path() -> Path:
    from ..models import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR


def combine_probabilities(probabilities: np.ndarray) -> float:
    """The manifest's rule: sigmoid of the mean view logit (the graphs output calibrated view probabilities)."""
    p = np.clip(np.asarray(probabilities, np.float64), EPS, 1 - EPS)
    mean_logit = float(np.mean(np.log(p) - np.log1p(-p)))
    return float(1.0 / (1.0 + np.exp(-mean_logit)))


# --------------------------------------------------------------------------- sessions
class OrtSession:
    """An ONNX Runtime session; ``device`` "cpu" or "cuda" (CUDA provider, refused if it does not engage)."""

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise RuntimeError("ONNX Runtime did not engage the CUDA provider (no GPU, or a CUDA/cuDNN mismatch)")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_name = self.session.get_inputs()[0].name
        self.max_batch = 32

    def run(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = dict(zip(self.output_names, self.session.run(None, {self.input_name: views})))
        return out["probability"], out["mask"], out["sources"]


class TorchSession:
    """The research backend: the checkpoint through the same DeployableGamma graph the export traces."""

    def __init__(self, checkpoint: Path, device: str = "cpu", threads: int | None = None, amp: bool = False):
        import torch  # imported here only: serving never reaches this line unless asked for PyTorch

        from ..train.trainer import load_model
        from .graph import build_deployable

        if threads:
            torch.set_num_threads(int(threads))
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("backend pytorch-cuda: torch sees no CUDA device")
        model, ckpt = load_model(checkpoint)
        self.torch = torch
        self.device = torch.device(device)
        self.graph = build_deployable(ckpt, model).to(self.device).eval()
        self.amp = amp
        self.max_batch = 32

    def run(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(views)).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            out = self.graph(x)
        return tuple(t.float().cpu().numpy() for t in out)


# --------------------------------------------------------------------------- detector
class Detector:
    """Scores decoded images with one artifact on one backend, as its manifest prescribes."""

    def __init__(self, manifest: dict, directory: Path, entry: dict, session, backend: str, selection: str = ""):
        self.manifest = manifest
        self.directory = directory
        self.artifact = entry
        self.session = session
        self.backend = backend
        self.selection = selection or f"{backend}: requested"
        self.policy = CropPolicy.from_dict(manifest["crop_policy"])
        self.bands = manifest["verdict_bands"]
        self.classes = list(manifest["source_classes"])
        self.max_batch = int(min(getattr(session, "max_batch", 32), manifest.get("max_batch", 32)))
        model = manifest["model"]
        self.model_info = {"name": model["name"], "version": model["version"], "digest": entry["sha256"],
                           "backend": backend, "variant": entry["variant"]}

    def __repr__(self) -> str:
        return f"Detector({self.model_info['name']} {self.model_info['version']} {self.artifact['file']} on {self.backend})"

    # The three steps of predict, public so that tests and benchmarks can time or check each one.
    def views(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, CropPlan]]:
        """Every image's views and plan; raises ImageTooSmall (or ValueError) before anything runs."""
        out = []
        for image in images:
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected HxWx3 uint8 RGB images, got {image.dtype} {image.shape}")
            out.append(self.policy.views(image))
        return out

    def run_views(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw graph outputs for (N, S, S, 3) uint8 views, run in chunks of the maximum batch."""
        parts = [self.session.run(np.ascontiguousarray(views[i:i + self.max_batch]))
                 for i in range(0, len(views), self.max_batch)]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """One Prediction per image. All views of all images run together in chunks of the maximum batch; an
        image is assembled as soon as its last view has run, so memory stays bounded by a chunk's outputs."""
        if len(images) == 0:
            return []
        prepared = self.views(images)
        views = np.concatenate([v for v, _ in prepared])
        bounds = np.cumsum([0] + [len(v) for v, _ in prepared])
        out: list[Prediction] = []
        buffers: list[list[np.ndarray]] = [[], [], []]
        offset = 0  # index of the first view held in buffers
        for start in range(0, len(views), self.max_batch):
            outputs = self.session.run(np.ascontiguousarray(views[start:start + self.max_batch]))
            for buffer, array in zip(buffers, outputs):
                buffer.append(array)
            end = start + len(outputs[0])
            while len(out) < len(prepared) and bounds[len(out) + 1] <= end:
                i = len(out)
                merged = [np.concatenate(b) if len(b) > 1 else b[0] for b in buffers]
                lo, hi = bounds[i] - offset, bounds[i + 1] - offset
                out.append(self._assemble(prepared[i][1], *(m[lo:hi] for m in merged)))
                buffers = [[m[hi:]] for m in merged]
                offset = bounds[i + 1]
        return out

    def _assemble(self, plan: CropPlan, probabilities, masks, sources) -> Prediction:
        mask = self.policy.stitch(masks, plan).astype(np.float32, copy=False)
        # Source shares: the head-2 maps stitched like the mask, but at the policy's working resolution capped
        # at SHARE_SIDE px (a share of pixels does not need a C-channel float map at full resolution).
        # stitch() resizes each view's map to that resolution. One class at a time: 2-D maps keep OpenCV's
        # resizes valid for any number of classes.
        policy, small = _share_geometry(self.policy, plan)
        stitched = np.stack([policy.stitch(sources[:, c], small) for c in range(sources.shape[1])], axis=-1)
        counts = np.bincount(stitched.argmax(axis=-1).ravel(), minlength=len(self.classes)).astype(np.float64)
        shares = counts / counts.sum()
        return Prediction(combine_probabilities(probabilities), mask,
                          {name: float(s) for name, s in zip(self.classes, shares)}, len(probabilities),
                          {"view_probabilities": [float(p) for p in probabilities]})

    def result(self, prediction: Prediction) -> dict:
        """The stable JSON fields of a result (the server adds model, image, heatmap_url, timings, cached)."""
        return {"ai_probability": round(prediction.probability, 4),
                "verdict": verdict(prediction.probability, self.bands),
                "mask_fraction": round(prediction.mask_fraction, 4),
                "sources": {k: round(v, 4) for k, v in prediction.source_shares.items()}}


SHARE_SIDE = 512


def _share_geometry(policy: CropPolicy, plan: CropPlan) -> tuple[CropPolicy, CropPlan]:
    """The policy and crop plan re-expressed at the working resolution (so stitch() stops there), shrunk so
    its long side is at most SHARE_SIDE."""
    h, w = CropPolicy._scaled(plan.height, plan.width, plan.scale)
    s = policy.input_size
    side = max(8, min(s, round(s * SHARE_SIDE / max(h, w))))
    f = side / s
    h2, w2 = max(side, round(h * f)), max(side, round(w * f))
    boxes = [(min(round(y * f), h2 - side), min(round(x * f), w2 - side)) for y, x in plan.boxes]
    top, left, gside = (round(v * plan.scale * f) for v in plan.global_box)
    return replace(policy, input_size=side), CropPlan(h2, w2, 1.0, boxes, (top, left, gside))


# --------------------------------------------------------------------------- loading
def load_detector(manifest_or_path: str | Path | None = None, backend: str = "auto", variant: str = "fp32", *,
                  threads: int | None = None) -> Detector:
    """A Detector for a model folder, its manifest.json, or one artifact file beside its manifest.

    ``None`` is the default model (models/default). ``backend="auto"`` picks TensorRT when an engine built
    for this GPU and TensorRT version is listed, then ONNX Runtime with CUDA, then ONNX Runtime on CPU, and
    records why in ``detector.selection`` (also logged). ``variant`` picks the ONNX file (fp32, int8, fp16);
    naming an artifact file picks that file whatever ``variant`` says. Every artifact's sha256 is checked
    against the manifest before it is loaded.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    path = Path(manifest_or_path) if manifest_or_path is not None else default_model_path()
    manifest, directory = read_manifest(path)
    named = path.name if path.is_file() and manifest_path(path) != path else None
    if named:
        entry = find_artifact(manifest, file=named)
        variant = entry["variant"]
        if backend == "auto":
            backend = {"checkpoint": "pytorch", "tensorrt-engine": "tensorrt",
                       "torch-tensorrt": "torch-tensorrt"}.get(entry["format"], "auto")
    detector = _select(manifest, directory, backend, variant, threads)
    log.info("gamma detector: %s", detector.selection)
    return detector


def _select(manifest: dict, directory: Path, backend: str, variant: str, threads: int | None) -> Detector:
    reasons = []
    if backend == "auto":
        engine, why = _matching_engine(manifest)
        if engine is not None:
            try:
                return _tensorrt(manifest, directory, engine, f"tensorrt: {why}")
            except Exception as exc:  # noqa: BLE001 - fall through to ONNX Runtime, saying why
                reasons.append(f"TensorRT engine {engine['file']} failed to load ({exc})")
        else:
            reasons.append(why)
        if _ort_has_cuda():
            try:
                return _onnxruntime(manifest, directory, variant, "cuda", threads,
                                    "onnxruntime-cuda: " + "; ".join(reasons + ["CUDA provider available"]))
            except RuntimeError as exc:
                reasons.append(f"ONNX Runtime CUDA unusable ({exc})")
        else:
            reasons.append("ONNX Runtime has no CUDA provider")
        return _onnxruntime(manifest, directory, variant, "cpu", threads, "onnxruntime-cpu: " + "; ".join(reasons))
    if backend == "onnxruntime":
        backend = "onnxruntime-cuda" if _ort_has_cuda() else "onnxruntime-cpu"
    if backend in ("onnxruntime-cpu", "onnxruntime-cuda"):
        device = backend.rsplit("-", 1)[1]
        return _onnxruntime(manifest, directory, variant, device, threads, f"{backend}: requested")
    if backend == "tensorrt":
        engine, why = _matching_engine(manifest, strict=True)
        return _tensorrt(manifest, directory, engine, f"tensorrt: requested; {why}")
    if backend in ("pytorch", "pytorch-cuda"):
        entry = find_artifact(manifest, formats={"checkpoint"})
        path = verify_artifact(directory, entry)
        session = TorchSession(path, "cuda" if backend == "pytorch-cuda" else "cpu", threads)
        return Detector(manifest, directory, entry, session, backend, f"{backend}: requested")
    if backend == "torch-tensorrt":
        from .tensorrt import TorchTensorRTSession, gpu_identity, tensorrt_version

        entry = find_artifact(manifest, formats={"torch-tensorrt"})
        check_engine_compatible(entry, gpu_identity(), tensorrt_version())
        path = verify_artifact(directory, entry)
        return Detector(manifest, directory, entry, TorchTensorRTSession(path), backend, f"{backend}: requested")
    raise AssertionError(backend)


def _onnxruntime(manifest, directory, variant, device, threads, selection) -> Detector:
    entry = find_artifact(manifest, variant=variant, formats={"onnx"})
    path = verify_artifact(directory, entry)
    session = OrtSession(path, device, threads)
    return Detector(manifest, directory, entry, session, f"onnxruntime-{device}", selection)


def _tensorrt(manifest, directory, entry, selection) -> Detector:
    from .tensorrt import TensorRTSession

    path = verify_artifact(directory, entry)
    session = TensorRTSession(path, int(entry.get("profile", {}).get("max", 32)))
    return Detector(manifest, directory, entry, session, "tensorrt", selection)


def _matching_engine(manifest: dict, strict: bool = False) -> tuple[dict | None, str]:
    """The TensorRT engine built for this GPU and TensorRT version, if the manifest lists one."""
    engines = [e for e in manifest["artifacts"] if e["format"] == "tensorrt-engine"]
    if not engines:
        if strict:
            raise ManifestError("backend tensorrt: the manifest lists no TensorRT engine; build one on this machine "
                                "with `gamma export CHECKPOINT --to tensorrt`")
        return None, "no TensorRT engine in the manifest"
    from .tensorrt import gpu_identity, tensorrt_version

    version, gpu = tensorrt_version(), gpu_identity()
    problems = []
    for entry in engines:
        try:
            check_engine_compatible(entry, gpu, version)
            return entry, f"engine {entry['file']} matches {gpu['name']} and TensorRT {version}"
        except ManifestError as exc:
            problems.append(str(exc))
    if strict:
        raise ManifestError("; ".join(problems))
    return None, "no usable TensorRT engine (" + "; ".join(problems) + ")"


def _ort_has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()
