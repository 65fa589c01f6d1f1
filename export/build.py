"""`gamma export`: a released checkpoint -> checked, parity-tested artifacts and their manifest.

Targets (each writes its file into the output folder and its entry into manifest.json there):

    onnx            FP32 ONNX (the reference deployable graph)
    onnx-int8       INT8 QDQ ONNX for CPUs (needs the FP32 ONNX; exported first if missing)
    onnx-fp16       FP16 ONNX: weights and compute FP16, uint8 in, float32 out (TensorRT 11's input)
    onnx-compact    FP32 compute, weights stored int8/FP16 (about a third of the bytes: the extension's bundle)
    tensorrt        FP16 engine for this GPU and TensorRT version (untested: no TensorRT here)
    torch-tensorrt  Torch-TensorRT ExportedProgram, ir="dynamo" (untested: no TensorRT here)

Every target gets a parity report against a reference on real images: the FP32 ONNX against
PyTorch, the others against the FP32 ONNX. The report is printed and stored in the manifest.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from .. import __version__
from ..crops import CropPolicy
from ..files import sha256_file
from ..images import IMAGE_EXTENSIONS, load_rgb
from ..runtime.manifest import ManifestError, find_artifact, read_manifest, verify_artifact
from ..runtime.onnxruntime import OrtSession
from .artifacts import artifact_entry, upsert_artifact, write_manifest
from .backends import TorchSession
from .parity import FP16_PROBABILITY, FP32_MASK, FP32_PROBABILITY, checked_parity

log = logging.getLogger("gamma.export")

TARGETS = ("onnx", "onnx-int8", "onnx-fp16", "onnx-compact", "tensorrt", "torch-tensorrt")
SELF_CHECK_CANDIDATES = 64  # held-out images the self-check views are chosen from


@dataclass
class ExportOptions:
    out: Path | None = None              # default: the checkpoint's folder
    name: str | None = None              # default: the checkpoint's file stem
    version: str = __version__
    folds: Path | None = None            # default: runs/starter/folds.json, else folds.json beside the checkpoint
    eval_fold: int = 0
    calibration_images: int = 32
    evaluation_images: int | None = None  # None: the whole held-out fold
    parity_images: int = 8
    images: Path | None = None           # parity images folder (default: held-out fold images)
    report: Path | None = None           # evaluation report.json (default: beside the checkpoint)
    threads: int | None = None
    progress: bool = True


@dataclass
class ExportResult:
    manifest: Path
    artifacts: list[dict]
    failures: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.failures


class _Progress:
    """One bar over the steps, and a nested bar per long step."""

    def __init__(self, steps: int, enabled: bool):
        self.enabled = enabled
        self.bar = tqdm(total=steps, desc="gamma export", unit="step", disable=not enabled, leave=True)

    def step(self, text: str) -> None:
        self.bar.set_postfix_str(text)
        if not self.enabled:
            log.info(text)

    def done(self) -> None:
        self.bar.update(1)

    def sub(self, text: str, total: int) -> Callable[[int], None]:
        bar = tqdm(total=total, desc=f"  {text}", unit="img", disable=not self.enabled, leave=False)

        def advance(n: int = 1) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()
        return advance

    def close(self) -> None:
        self.bar.close()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parity_images(options: ExportOptions) -> tuple[list[np.ndarray], str]:
    """Real images for the parity checks: a given folder, else the held-out fold of the protocol."""
    if options.images:
        files = sorted(p for p in Path(options.images).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"no images in {options.images}")
        return [load_rgb(p) for p in files[:options.parity_images]], str(options.images)
    from .quantize import fold_split

    split = fold_split(options.folds, options.eval_fold, 0, options.parity_images)
    return [load_rgb(p) for p, _ in split.evaluation], f"{options.folds}: fold {options.eval_fold}"


def export_model(checkpoint: str | Path, targets: list[str], options: ExportOptions | None = None) -> ExportResult:
    from .graph import build_deployable
    from .onnx import base_manifest, checkpoint_entry, export_graph, load_release, onnx_entry

    options = options or ExportOptions()
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown export target(s) {unknown}; choose from {', '.join(TARGETS)}")
    checkpoint = Path(checkpoint)
    if options.folds is None:
        default = Path("runs/starter/folds.json")
        options.folds = default if default.is_file() or not (checkpoint.parent / "folds.json").is_file() \
            else checkpoint.parent / "folds.json"
    out = Path(options.out or checkpoint.parent)
    out.mkdir(parents=True, exist_ok=True)
    name = options.name or checkpoint.stem
    progress = _Progress(len(targets) + 2, options.progress)
    failures: dict[str, str] = {}

    progress.step("loading the checkpoint")
    model, ckpt = load_release(checkpoint)
    graph = build_deployable(ckpt, model).eval()
    policy = CropPolicy.from_dict(ckpt["crop_policy"])
    manifest = base_manifest(checkpoint, ckpt, graph, name, options.version, options.report)
    manifest["artifacts"] = _kept_artifacts(out, manifest["checkpoint"]["sha256"])
    entry = checkpoint_entry(out, checkpoint)
    if entry:
        upsert_artifact(manifest, entry)
    images, image_source = parity_images(options)
    progress.done()

    fp32_path = out / f"{name}.onnx"
    torch_run = None

    def reference_fp32():
        path = out / find_artifact(manifest["artifacts"], variant="fp32", formats={"onnx"})["file"]
        return OrtSession(path, "cpu", options.threads).run

    def ensure_fp32():
        nonlocal torch_run
        if any(e["variant"] == "fp32" and e["format"] == "onnx" for e in manifest["artifacts"]) and fp32_path.is_file():
            return
        progress.step("ONNX FP32: export and check")
        export_graph(graph, fp32_path, policy.input_size)
        progress.step("ONNX FP32: parity against PyTorch")
        torch_run = torch_run or TorchSession(checkpoint, "cpu", options.threads).run
        report = checked_parity(torch_run, OrtSession(fp32_path, "cpu", options.threads).run, images, policy,
                                names=("pytorch eager fp32 (cpu)", "onnxruntime-cpu"), image_source=image_source,
                                probability=FP32_PROBABILITY, mask=FP32_MASK,
                                progress=progress.sub("parity FP32 vs PyTorch", len(images)))
        if not report["passed"]:
            failures["onnx"] = f"parity against PyTorch out of bounds: {report}"
        upsert_artifact(manifest, onnx_entry(out, fp32_path, "fp32", "fp32", parity=report))

    for target in targets:
        try:
            if target == "onnx":
                ensure_fp32()
            elif target == "onnx-int8":
                ensure_fp32()
                _int8(manifest, out, name, fp32_path, policy, options, progress, failures)
            elif target == "onnx-compact":
                ensure_fp32()
                _compact(manifest, out, name, fp32_path, policy, options, progress, failures)
            elif target == "onnx-fp16":
                _fp16(manifest, out, name, ckpt, model, policy, images, image_source, options, progress, failures,
                      reference_fp32, ensure_fp32)
            elif target == "tensorrt":
                _tensorrt(manifest, out, name, ckpt, model, policy, images, image_source, options, progress,
                          failures, reference_fp32, ensure_fp32)
            elif target == "torch-tensorrt":
                _torch_tensorrt(manifest, out, name, ckpt, model, policy, images, image_source, progress, failures,
                                reference_fp32, ensure_fp32)
        except Exception as exc:  # noqa: BLE001 - one target failing does not lose the others' artifacts
            log.exception("export target %s failed", target)
            failures[target] = f"{type(exc).__name__}: {exc}"
        write_manifest(out, manifest)  # after every target: a later failure keeps what was built
        progress.done()
    try:
        _self_check(manifest, out, name, policy, options, progress, failures, images, image_source)
    except Exception as exc:  # noqa: BLE001 - without reference views the runtime refuses reduced precision
        log.exception("self-check views failed")
        failures["self-check"] = f"{type(exc).__name__}: {exc}"
    path = write_manifest(out, manifest)
    progress.done()
    progress.close()
    return ExportResult(path, manifest["artifacts"], failures)


def _self_check(manifest, out, name, policy, options, progress, failures, images, image_source) -> None:
    """Reference views for the runtime's load-time self-check, and each reduced-precision artifact's outputs on
    them here with the value its acceptance measured (the runtime refuses an artifact that drifts from them)."""
    from ..runtime import load_detector
    from ..runtime.cpu import cpu_identity
    from ..runtime.manifest import Manifest
    from ..runtime.selfcheck import check, needs_check
    from .quantize import fold_split
    from .selfcheck import write_self_check

    typed = Manifest.from_dict(manifest, out)
    reduced = [a for a in typed.artifacts if a.format in ("onnx", "tensorrt-engine") and needs_check(a)]
    if not reduced:
        return
    progress.step("self-check views")
    try:  # candidates from the held-out fold; a model without the protocol's folds uses its parity images
        split = fold_split(options.folds, options.eval_fold, 0, SELF_CHECK_CANDIDATES)
        images, image_source = [load_rgb(p) for p, _ in split.evaluation], f"{options.folds}: fold {options.eval_fold}"
    except FileNotFoundError:
        pass
    fp32 = OrtSession(out / find_artifact(manifest["artifacts"], variant="fp32", formats={"onnx"})["file"], "cpu",
                      options.threads)
    views = write_self_check(manifest, out, name, fp32.run, images, policy, image_source)
    for artifact in reduced:
        backend = "tensorrt" if artifact.format == "tensorrt-engine" else "onnxruntime-cpu"
        run = load_detector(out / artifact.file, backend, threads=options.threads, self_check=False).session.run
        accepted = (artifact.entry["quantization"]["acceptance"]["mean_abs_probability_diff"]
                    if artifact.variant == "int8" else artifact.entry["parity"]["max_abs_probability_diff"])
        artifact.entry["self_check"] = {"probability": [float(p) for p in run(views)[0]],
                                        "accepted_value": float(accepted), "cpu": cpu_identity()}
        report = check(Manifest.from_dict(manifest, out), artifact, run)
        if not report.passed:
            failures[artifact.variant] = (f"{artifact.file}: its accepted {report.statistic} {accepted:.4f} is above "
                                          f"the self-check bound {report.bound}")

def _kept_artifacts(out: Path, checkpoint_sha: str) -> list[dict]:
    """Artifacts already in the folder's manifest for the same checkpoint, built by this exporter version (the
    graph is code as much as weights), and still intact."""
    try:
        old, _ = read_manifest(out)
    except ManifestError:
        return []
    if old.get("checkpoint", {}).get("sha256") != checkpoint_sha:
        log.warning("%s: the manifest described another checkpoint; starting a new one", out)
        return []
    built_by = old.get("build", {}).get("libraries", {}).get("gamma-detect")
    if built_by != __version__:
        log.warning("%s: the artifacts were built by gamma-detect %s; rebuilding them with %s", out, built_by,
                    __version__)
        return []
    kept = []
    for entry in old["artifacts"]:
        try:
            verify_artifact(out, entry)
            kept.append(entry)
        except ManifestError as exc:
            log.warning("dropping %s from the manifest: %s", entry["file"], exc)
    return kept


def _int8(manifest, out, name, fp32_path, policy, options, progress, failures) -> None:
    from ..runtime.cpu import cpu_identity
    from .onnx import onnx_entry
    from .quantize import build_int8, fold_split

    progress.step("ONNX INT8: calibrate, quantize, accept")
    split = fold_split(options.folds, options.eval_fold, options.calibration_images, options.evaluation_images)
    path = out / f"{name}-int8.onnx"
    record, tried = build_int8(fp32_path, path, policy, split, options.threads,
                               progress=lambda text, total: progress.sub(text, total))
    if record is None:
        failures["onnx-int8"] = f"no INT8 recipe met the acceptance bounds: {tried}"
        manifest["int8_rejected"] = tried
        return
    record["tried"] = tried
    # Acceptance is a property of the artifact on a kernel class: keep the one measured here under this CPU's
    # class; bench/int8_cpu_check.py adds others (e.g. AVX2 under qemu).
    record["acceptance"]["cpu"] = cpu_identity()
    record["acceptance_by_cpu"] = {cpu_identity()["class"]: record["acceptance"]}
    upsert_artifact(manifest, onnx_entry(out, path, "int8", "int8", derived_from=fp32_path.name,
                                         derived_from_sha256=sha256_file(fp32_path), quantization=record))


def _compact(manifest, out, name, fp32_path, policy, options, progress, failures) -> None:
    from .compact import compact_weights
    from .onnx import onnx_entry
    from .quantize import calibration_views, fold_split

    progress.step("ONNX compact: weight storage, parity on the held-out fold")
    split = fold_split(options.folds, options.eval_fold, options.calibration_images, options.evaluation_images)
    path = out / f"{name}-compact.onnx"
    record = compact_weights(fp32_path, path, calibration_views(split.calibration, policy), options.threads,
                             progress=lambda text, total: progress.sub(text, total))
    record.update(calibration_images=len(split.calibration),
                  calibration_source=f"{split.folds_file}: folds != {split.eval_fold}")
    images = [load_rgb(p) for p, _ in split.evaluation]
    # Bounded where the verdict reads it, the image's probability (FP16's bound on the whole held-out fold): the
    # rounding of int8 weights moves single views by up to about 0.02, and the views' mean logit averages it out.
    report = checked_parity(OrtSession(fp32_path, "cpu", options.threads).run,
                            OrtSession(path, "cpu", options.threads).run, images, policy,
                            names=("onnxruntime-cpu fp32", "onnxruntime-cpu compact"),
                            image_source=f"{split.folds_file}: fold {split.eval_fold}", probability=FP16_PROBABILITY,
                            views=False, progress=progress.sub("parity compact vs FP32", len(images)))
    if not report["passed"]:
        failures["onnx-compact"] = f"compact parity out of bounds: {report}"
    upsert_artifact(manifest, onnx_entry(out, path, "compact", "fp32 (compute; weights stored int8 or fp16)",
                                         derived_from=fp32_path.name, derived_from_sha256=sha256_file(fp32_path),
                                         compaction=record, parity=report))


def _fp16(manifest, out, name, ckpt, model, policy, images, image_source, options, progress, failures,
          reference_fp32, ensure_fp32) -> None:
    import copy

    import torch

    from .graph import build_deployable
    from .onnx import export_graph, onnx_entry

    ensure_fp32()
    progress.step("ONNX FP16: export and check")
    path = out / f"{name}-fp16.onnx"
    export_graph(build_deployable(ckpt, copy.deepcopy(model), torch.float16), path, policy.input_size)
    progress.step("ONNX FP16: parity")
    try:
        report = checked_parity(reference_fp32(), OrtSession(path, "cpu", options.threads).run, images, policy,
                                names=("onnxruntime-cpu fp32", "onnxruntime-cpu fp16"), image_source=image_source,
                                probability=FP16_PROBABILITY, progress=progress.sub("parity FP16 vs FP32", len(images)))
        report["executed_on"] = "onnxruntime-cpu"
        if not report["passed"]:
            failures["onnx-fp16"] = f"FP16 parity out of bounds: {report}"
    except Exception as exc:  # noqa: BLE001 - a runtime without FP16 kernels: say so, keep the artifact
        report = {"executed_on": None, "note": f"ONNX Runtime CPU could not run it here: {exc}; check it on a GPU "
                                               "(bench/gpu_check.py) or with TensorRT"}
    upsert_artifact(manifest, onnx_entry(out, path, "fp16", "fp16 (weights and compute; uint8 in, float32 out)",
                                         parity=report))


def _tensorrt(manifest, out, name, ckpt, model, policy, images, image_source, options, progress, failures,
              reference_fp32, ensure_fp32) -> None:
    from ..runtime import tensorrt as trt_serving
    from .tensorrt import build_engine

    version = trt_serving.tensorrt_version()
    if version is None:
        raise trt_serving.TensorRTUnavailable("TensorRT is not installed: `pip install tensorrt` on the GPU machine "
                                              "that will serve the engine; " + trt_serving.UNTESTED)
    major = int(version.split(".")[0])
    ensure_fp32()
    if major >= 11:
        if not any(e["variant"] == "fp16" for e in manifest["artifacts"]):
            _fp16(manifest, out, name, ckpt, model, policy, images, image_source, options, progress, failures,
                  reference_fp32, ensure_fp32)
        source = out / find_artifact(manifest["artifacts"], variant="fp16", formats={"onnx"})["file"]
    else:
        source = out / find_artifact(manifest["artifacts"], variant="fp32", formats={"onnx"})["file"]
    gpu = trt_serving.gpu_identity() or {"name": "unknown-gpu"}
    engine = out / f"{name}-trt{major}-{_slug(gpu['name'])}.engine"
    progress.step(f"TensorRT {version}: building {engine.name}")
    info = build_engine(source, engine, out / f"{name}-trt{major}.timing-cache", policy.input_size)
    progress.step("TensorRT: parity against ONNX Runtime FP32")
    session = trt_serving.TensorRTSession(engine)
    report = checked_parity(reference_fp32(), session.run, images, policy,
                            names=("onnxruntime-cpu fp32", "tensorrt fp16"), image_source=image_source,
                            probability=FP16_PROBABILITY,
                            progress=progress.sub("parity TensorRT", len(images)))
    if not report["passed"]:
        failures["tensorrt"] = f"TensorRT parity out of bounds: {report}"
    upsert_artifact(manifest, artifact_entry(out, engine, f"tensorrt-fp16-trt{major}", "tensorrt-engine", "fp16",
                                             parity=report, **info))


def _torch_tensorrt(manifest, out, name, ckpt, model, policy, images, image_source, progress, failures,
                    reference_fp32, ensure_fp32) -> None:
    import copy

    import torch

    from ..runtime.tensorrt import gpu_identity
    from .graph import build_deployable
    from .tensorrt import TorchTensorRTSession, compile_torch_tensorrt

    ensure_fp32()
    gpu = gpu_identity() or {"name": "unknown-gpu"}
    path = out / f"{name}-torchtrt-{_slug(gpu['name'])}.ep"
    progress.step(f"Torch-TensorRT: compiling {path.name}")
    info = compile_torch_tensorrt(build_deployable(ckpt, copy.deepcopy(model), torch.float16), path,
                                  policy.input_size, out / f"{name}-torchtrt.timing-cache")
    session = TorchTensorRTSession(path)
    report = checked_parity(reference_fp32(), session.run, images, policy,
                            names=("onnxruntime-cpu fp32", "torch-tensorrt fp16"), image_source=image_source,
                            probability=FP16_PROBABILITY, progress=progress.sub("parity Torch-TRT", len(images)))
    if not report["passed"]:
        failures["torch-tensorrt"] = f"Torch-TensorRT parity out of bounds: {report}"
    upsert_artifact(manifest, artifact_entry(out, path, "torch-tensorrt-fp16", "torch-tensorrt", "fp16",
                                             parity=report, **info))


def format_report(result: ExportResult) -> str:
    lines = [f"manifest: {result.manifest}", "", f"{'artifact':<44} {'variant':<22} {'MB':>6}  parity"]
    for e in result.artifacts:
        p = e.get("parity") or (e.get("quantization") or {}).get("acceptance") or {}
        if "max_abs_probability_diff" in p and "roc_auc_delta" not in p:
            text = (f"vs {p.get('reference', '?')}: max|dp| {p['max_abs_probability_diff']:.2e} "
                    f"(image {p['max_abs_image_probability_diff']:.2e}), max|dmask| {p['max_abs_mask_diff']:.2e}, "
                    f"max|dsources| {p['max_abs_sources_diff']:.2e} on {p['images']} images "
                    f"{'PASS' if p.get('passed') else 'FAIL'}")
        elif "roc_auc_delta" in p:
            text = (f"INT8 vs FP32 on {p['images']} held-out images: AUC {p['roc_auc_fp32']:.4f} -> "
                    f"{p['roc_auc_int8']:.4f} (|d| {p['roc_auc_delta']:.4f} <= 0.01), mean|dp| "
                    f"{p['mean_abs_probability_diff']:.4f} <= 0.02 (max {p['max_abs_probability_diff']:.4f}), "
                    f"recipe {p['recipe']} {'ACCEPTED' if p['accepted'] else 'REJECTED'}")
        elif p.get("note"):
            text = p["note"]
        else:
            text = "-"
        lines.append(f"{e['file']:<44} {e['variant']:<22} {e['bytes'] / 1e6:>6.1f}  {text}")
    for target, why in result.failures.items():
        lines.append(f"FAILED {target}: {why}")
    return "\n".join(lines)
