"""Build side: a released checkpoint -> ONNX graphs (FP32, FP16) and the manifest that describes them.

The graph is :class:`~gamma_detect.export.graph.DeployableGamma`: uint8 NHWC RGB views
at the model's input size in; calibrated probability, head-1 mask and head-2 source
map out. Preprocessing and the temperature live inside the graph, so a server does
no float work and cannot drift from training. Every graph is checked with
``onnx.checker`` (full check, with shape inference) before it is written down.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import platform
import warnings
from datetime import datetime, timezone
from pathlib import Path

import onnx
import torch

from ..abstain import AbstentionRule
from ..contract import MAX_BATCH_VIEWS, SOURCE_CLASSES
from ..crops import CropPolicy
from ..files import atomic_path, sha256_file
from ..runtime.detector import COMBINE_RULE
from ..runtime.manifest import FORMAT
from ..starter import default_manifest
from ..train.model import MAP_STRIDE
from ..train.trainer import load_model
from .artifacts import artifact_entry
from .graph import INPUT_NAME, OUTPUT_NAMES, DeployableGamma, build_deployable
from .versions import library_versions

log = logging.getLogger("gamma.export")

OPSET = 18            # >= 17 (LayerNormalization); 18 is the dynamo exporter's native opset here


class ExportError(RuntimeError):
    pass


# --------------------------------------------------------------------------- checkpoint
def load_release(checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """A released checkpoint's model (eval mode) and dict; refuses one without calibration and bands."""
    model, ckpt = load_model(checkpoint)
    missing = [k for k in ("calibration", "bands", "crop_policy") if not ckpt.get(k)]
    if missing:
        raise ExportError(
            f"{checkpoint} lacks {', '.join(missing)}: only a released checkpoint (written by `gamma evaluate "
            "--release`, calibrated on out-of-fold scores) can be exported. Fold checkpoints are for evaluation.")
    if not model.cfg.seg_heads:
        raise ExportError(f"{checkpoint} has no segmentation heads: the deployable graph needs the head-1 mask and "
                          "head-2 source outputs")
    return model, ckpt


def deployable(checkpoint: str | Path, dtype: torch.dtype = torch.float32) -> tuple[DeployableGamma, dict]:
    model, ckpt = load_release(checkpoint)
    return build_deployable(ckpt, model, dtype).eval(), ckpt


# --------------------------------------------------------------------------- export
def export_graph(graph: DeployableGamma, path: str | Path, input_size: int, opset: int = OPSET) -> Path:
    """Trace the deployable graph to ONNX with a dynamic batch dimension and check it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros((2, input_size, input_size, 3), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with atomic_path(path, ".tmp.onnx") as tmp:  # a failed export or check leaves no file behind
        chatter = io.StringIO()
        # Exporter chatter ("torchvision is not installed. Skipping torchvision::nms", "Skipping constant folding
        # for op Split") goes to the debug log, not the progress display.
        quiet = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
        levels = [logger.level for logger in quiet]
        for logger in quiet:
            logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                warnings.simplefilter("ignore")
                torch.onnx.export(graph, (example,), str(tmp), input_names=[INPUT_NAME],
                                  output_names=list(OUTPUT_NAMES), dynamic_shapes={"images": {0: batch}},
                                  opset_version=opset, dynamo=True, external_data=False, verbose=False, optimize=True)
        finally:
            for logger, level in zip(quiet, levels):
                logger.setLevel(level)
        log.debug("torch.onnx.export: %s", chatter.getvalue())
        model = onnx.load(str(tmp))
        model.doc_string = "GAMMA AI-image detector: uint8 NHWC RGB views -> calibrated probability, head-1 mask, " \
                           "head-2 source map. See manifest.json beside this file."
        _set_metadata(model, {"temperature": f"{graph.temperature:.9g}", "input_layout": "NHWC uint8 RGB",
                              "outputs": ",".join(OUTPUT_NAMES), "manifest": "manifest.json"})
        onnx.save(model, str(tmp))
        check_onnx(tmp)
    return path


def check_onnx(path: str | Path) -> dict:
    """``onnx.checker`` with full shape inference, plus the interface every runtime relies on."""
    path = Path(path)
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path), load_external_data=False)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 17:
        raise ExportError(f"{path}: opset {opset} < 17")
    inputs = {i.name: i for i in model.graph.input}
    outputs = [o.name for o in model.graph.output]
    if list(inputs) != [INPUT_NAME] or outputs != list(OUTPUT_NAMES):
        raise ExportError(f"{path}: interface {list(inputs)} -> {outputs}, expected [{INPUT_NAME}] -> {list(OUTPUT_NAMES)}")
    tensor = inputs[INPUT_NAME].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.UINT8:
        raise ExportError(f"{path}: input is {onnx.TensorProto.DataType.Name(tensor.elem_type)}, expected UINT8")
    if not tensor.shape.dim[0].dim_param:
        raise ExportError(f"{path}: the batch dimension is not dynamic")
    return {"opset": opset, "nodes": len(model.graph.node)}


def _set_metadata(model: onnx.ModelProto, values: dict) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in values.items():
        prop = existing.get(key) or model.metadata_props.add()
        prop.key, prop.value = key, str(value)


# --------------------------------------------------------------------------- measurements
def flops_per_image(graph: DeployableGamma, input_size: int) -> int:
    """Floating-point operations of one view (multiply-add = 2), counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((1, input_size, input_size, 3), dtype=torch.uint8)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        graph(x)
    return int(counter.get_total_flops())


def parameter_count(graph: DeployableGamma) -> int:
    return int(sum(p.numel() for p in graph.model.parameters()))


# --------------------------------------------------------------------------- manifest
def data_summary(ckpt: dict) -> dict:
    """The training data's identity: the spec, the record count, and the digest of its manifest/index."""
    data = dict(ckpt.get("data") or {})
    spec = str(data.get("spec", ckpt.get("config", {}).get("data", "")))
    out = {"spec": spec, "records": data.get("records")}
    kind, _, location = spec.partition(":")
    index = Path(location.rsplit(":", 1)[0]) if location else None
    if index is not None and index.is_file():
        out["index"] = str(index)
        out["index_sha256"] = sha256_file(index)
    if kind == "starter":
        out["manifest"] = "data/starter_manifest.csv"  # package data (gamma_detect.data), one place in repo and wheel
        out["manifest_sha256"] = sha256_file(default_manifest())
    if "manifest_sha256" not in out and "index_sha256" not in out:
        out["note"] = "the training data manifest was not found at export time; digest not recorded"
    return out


def evaluation_summary(checkpoint: Path, report: Path | None = None) -> dict | None:
    """The headline out-of-fold numbers from the release report beside the checkpoint (report.json)."""
    report = report or checkpoint.parent / "report.json"
    if not report.is_file():
        return None
    data = json.loads(report.read_text())
    gamma = (data.get("protocol") or {}).get("gamma") or {}
    if not gamma:
        return {"report": report.name}
    seeds = sorted(gamma, key=int)
    main = gamma[seeds[0]]
    keep = ("n", "roc_auc", "roc_auc_ci95", "average_precision", "accuracy", "real_accuracy", "ai_accuracy")
    summary = {"report": report.name, "protocol": "grouped, label-stratified k-fold, out-of-fold scores",
               "folds": data.get("folds"), "seeds": [int(s) for s in seeds],
               **{k: main[k] for k in keep if k in main}}
    if len(seeds) > 1:
        summary["roc_auc_seeds"] = [gamma[s]["roc_auc"] for s in seeds]
    if main.get("manipulated"):
        summary["manipulated"] = main["manipulated"]
    if data.get("audit"):
        summary["shortcut_audit_auc"] = data["audit"].get("pipeline_auc")
    return summary


def base_manifest(checkpoint: Path, ckpt: dict, graph: DeployableGamma, name: str, version: str,
                  report: Path | None = None) -> dict:
    """Everything but the artifact list: what a runtime needs to use any artifact of this model."""
    policy = CropPolicy.from_dict(ckpt["crop_policy"])
    s = policy.input_size
    m = s // MAP_STRIDE
    return {
        "format": FORMAT,
        "model": {"name": name, "version": version, "architecture": "GAMMA (EfficientNet-Lite0, FPN, two segmentation "
                  "heads, reverse cross-attention)", "parameters": parameter_count(graph),
                  "flops_per_image": flops_per_image(graph, s), "config": ckpt["config"]["model"]},
        "checkpoint": {"file": checkpoint.name, "sha256": sha256_file(checkpoint)},
        "input": {"name": INPUT_NAME, "shape": ["batch", s, s, 3], "dtype": "uint8", "layout": "NHWC",
                  "color": "RGB", "size": s,
                  "preprocessing": "inside the graph: float(x) / 127.5 - 1, NHWC -> NCHW (as in training)"},
        "crop_policy": {**policy.to_dict(), "combine_rule": COMBINE_RULE},
        "outputs": [
            {"name": "probability", "shape": ["batch"], "dtype": "float32",
             "meaning": "calibrated probability that the view is AI-generated: sigmoid(logit / temperature)"},
            {"name": "mask", "shape": ["batch", m, m], "dtype": "float32",
             "meaning": f"head-1: per-cell probability that the pixel is not authentic, one cell per {MAP_STRIDE}x"
                        f"{MAP_STRIDE} px of the view (the extension's heatmap, upsampled bilinearly to the image)"},
            {"name": "sources", "shape": ["batch", len(SOURCE_CLASSES), m, m], "dtype": "float32",
             "meaning": "head-2: per-cell softmax over source_classes, same grid as mask (the result's `sources` "
                        "field: share of image pixels per argmax class, after upsampling)"},
        ],
        "source_classes": list(SOURCE_CLASSES),
        "calibration": {"method": "temperature scaling on pooled out-of-fold logits",
                        "temperature": float(ckpt["calibration"]["temperature"]), "applied_in_graph": True,
                        "note": "recorded for transparency; no runtime applies it again"},
        "verdict_bands": ckpt["bands"],
        # How view scores and region evidence make the image score the bands are over, and the head-1 map's
        # calibration (gamma_detect/decision.py; absent: the mean view logit alone, the raw map).
        "decision": ckpt.get("decision"),
        "mask_calibration": ckpt.get("mask_calibration"),
        # The runtime's abstention rule and the band promise with its measured value (LOSO; older checkpoints: null).
        "abstention": AbstentionRule.from_dict(ckpt["abstention"]).to_dict() if ckpt.get("abstention") else None,
        "band_promise": ckpt.get("promise"),
        "data": data_summary(ckpt),
        "evaluation": evaluation_summary(checkpoint, report),
        "training": ckpt.get("training"),
        "max_batch": MAX_BATCH_VIEWS,
        "build": {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "libraries": library_versions(),
                  "python": platform.python_version(), "platform": platform.platform(),
                  "machine": platform.machine()},
        "artifacts": [],
    }


def checkpoint_entry(directory: Path, checkpoint: Path) -> dict | None:
    """The checkpoint as an artifact (the PyTorch backend's input) when it sits in the export folder."""
    if checkpoint.resolve().parent != directory.resolve():
        return None
    return artifact_entry(directory, checkpoint, "pytorch", "checkpoint", "fp32", shipped=False,
                          note="research backend only (needs the `train` extra); not shipped in the wheel")


def onnx_entry(directory: Path, path: Path, variant: str, precision: str, **extra) -> dict:
    info = check_onnx(path)
    return artifact_entry(directory, path, variant, "onnx", precision, opset=info["opset"], **extra)
