"""INT8 for CPUs: ONNX Runtime static quantization, accepted only if it keeps the FP32 behaviour.

Static QDQ quantization (uint8 activations, int8 per-channel weights in 7 bits
for the layers ONNX Runtime runs as u8 x s8 GEMMs, see RECIPES) of the FP32 graph, calibrated on views of starter images from the
training folds. Acceptance is measured on the out-of-fold images (a fold the
calibration never saw), each scored whole through the crop policy exactly as a
runtime scores it:

- ROC-AUC of the INT8 probabilities within 0.01 of the FP32 ones, and
- mean absolute difference of the probabilities at most 0.02.

Quantization recipes are tried from the fastest to the most conservative (more
of the graph kept in float); the first accepted one is kept, and every tried
recipe's numbers go into the manifest. If none passes, there is no INT8 artifact.

ONNX Runtime, numpy and scikit-learn (the train extra) are needed here, not torch.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from ..crops import CropPolicy
from ..images import load_rgb

log = logging.getLogger("gamma.export.quantize")

AUC_TOLERANCE = 0.01
MEAN_PROBABILITY_TOLERANCE = 0.02
CALIBRATION_BATCH = 8

# Ops quantized in every recipe: the convolutions with their fused activations and residual adds (most of the
# time), the pooling/concat between them, and the attention/classifier matmuls. The output tail
# (Sigmoid, the softmax) stays float: its outputs are the maps users see.
QUANTIZED_OPS = ("Conv", "Clip", "Relu", "Add", "Concat", "AveragePool", "MatMul", "Gemm")


@dataclass(frozen=True)
class Recipe:
    name: str
    keep_float: tuple[str, ...] = ()   # module scopes (from the exporter's node metadata) left in float
    note: str = ""
    weights: str = "int8"              # "int8" (s8) or "uint8" (u8)
    seven_bit: str = "none"            # which weights get 7 bits: "none", "gemm" (the layers ONNX Runtime runs as
                                       # u8 x s8 GEMMs: non-depthwise Conv, MatMul, Gemm) or "all"
    format: str = "qdq"                # "qdq" or "qoperator"
    calibration: str = "MinMax"        # activation ranges: "MinMax", "Percentile" or "Entropy"


_EARLY = ("model.backbone.stem", "model.backbone.blocks.0", "model.backbone.blocks.1", "model.backbone.blocks.2",
          "model.backbone.blocks.3")

# Fastest first; every recipe gives the same numbers on every x86 CPU class. Full-range s8 weights do not: x86
# CPUs without VNNI multiply u8 x s8 through vpmaddubsw, whose 16-bit pair sums saturate (ONNX Runtime's
# quantization docs), so the 0.2.1 INT8 model, full-range s8, gave mean |dp| 0.015 on AVX-512 VNNI and 0.062 on
# AVX2 (qemu -cpu Haswell) on the same views. Weights in 7 bits cannot saturate (2 x 255 x 64 < 2^15); measured
# on those views, 7-bit GEMM weights give the same numbers under AVX2 and VNNI. Depthwise convolutions keep 8-bit
# weights: ONNX Runtime runs them through a widening kernel, not the u8 x s8 GEMM. Losing a weight bit costs
# accuracy, won back by percentile activation ranges and by keeping the stem (whose uint8 input is often near
# 255) and the first block in float: mean |dp| 0.024 (all int8, MinMax) -> 0.016 (float stem, Percentile).
RECIPES = (
    Recipe("qdq-all-s7", (), "every Conv/MatMul/Gemm path in int8, 7-bit GEMM weights, percentile ranges",
           seven_bit="gemm", calibration="Percentile"),
    Recipe("qdq-float-stem-s7", _EARLY[:2], "the stem and the first block in float, 7-bit GEMM weights, "
           "percentile ranges", seven_bit="gemm", calibration="Percentile"),
    Recipe("qdq-float-early-s7", _EARLY, "the stem and blocks 0-3 (the 112 and 56 px layers) in float, 7-bit GEMM "
           "weights, percentile ranges", seven_bit="gemm", calibration="Percentile"),
    # Percentile needs a histogram of every activation, which a near-constant tensor cannot give.
    Recipe("qdq-float-stem-s7-minmax", _EARLY[:2], "the stem and the first block in float, 7-bit GEMM weights, "
           "MinMax ranges", seven_bit="gemm"),
)
# Full-range s8 weights: right only on CPUs with VNNI/AMX; kept to measure the difference
# (bench/int8_cpu_check.py), never shipped.
FULL_RANGE = Recipe("qdq-all-s8", (), "every Conv/MatMul/Gemm path in int8, full-range s8 weights")


@dataclass
class Acceptance:
    recipe: str
    images: int
    roc_auc_fp32: float
    roc_auc_int8: float
    mean_abs_probability_diff: float
    max_abs_probability_diff: float
    mean_abs_mask_diff: float
    accepted: bool
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def roc_auc_delta(self) -> float:
        return abs(self.roc_auc_int8 - self.roc_auc_fp32)

    def to_dict(self) -> dict:
        return {"recipe": self.recipe, "images": self.images, "roc_auc_fp32": round(self.roc_auc_fp32, 6),
                "roc_auc_int8": round(self.roc_auc_int8, 6), "roc_auc_delta": round(self.roc_auc_delta, 6),
                "mean_abs_probability_diff": round(self.mean_abs_probability_diff, 6),
                "max_abs_probability_diff": round(self.max_abs_probability_diff, 6),
                "mean_abs_mask_diff": round(self.mean_abs_mask_diff, 6), "accepted": self.accepted,
                "bounds": {"roc_auc_delta": AUC_TOLERANCE, "mean_abs_probability_diff": MEAN_PROBABILITY_TOLERANCE},
                "seconds": round(self.seconds, 1), **self.extra}


# --------------------------------------------------------------------------- images
@dataclass
class FoldSplit:
    calibration: list[Path]          # training-fold images for calibration
    evaluation: list[tuple[Path, int]]  # out-of-fold images (path, label) for acceptance
    folds_file: str
    eval_fold: int


def fold_split(folds_file: str | Path, eval_fold: int = 0, calibration_images: int = 32,
               evaluation_images: int | None = None, seed: int = 0, root: str | Path | None = None) -> FoldSplit:
    """Calibration images from the training folds and evaluation images from ``eval_fold`` (``folds.json``).

    Image paths in the folds file are relative to ``root`` if given, else to the first of these where they
    exist: the current folder, the repository this package lives in, its starter image folder
    (work/starter/images: the copy in models/default names files only), the folds file's folder.
    """
    folds_file = Path(folds_file)
    if not folds_file.is_file():
        raise FileNotFoundError(f"{folds_file} not found: the INT8 step needs the protocol's folds file "
                                "(`gamma evaluate` writes runs/starter/folds.json; the default model keeps a copy "
                                "in models/default/folds.json); pass --folds PATH")
    rows = json.loads(folds_file.read_text())["assignments"]
    if root is None:
        first = Path(rows[0]["path"]) if rows else Path()
        repo = Path(__file__).resolve().parent.parent
        bases = (Path("."), repo, repo / "work" / "starter" / "images", folds_file.parent)
        root = next((b for b in bases if (b / first).exists()), Path("."))
    root = Path(root)
    rng = random.Random(seed)
    train = [root / r["path"] for r in rows if r["fold"] != eval_fold]
    held = [(root / r["path"], int(r["label"])) for r in rows if r["fold"] == eval_fold]
    if not held:
        raise ValueError(f"{folds_file}: fold {eval_fold} is empty")
    rng.shuffle(train)
    calibration = train[:calibration_images]
    if evaluation_images is not None and evaluation_images < len(held):
        # Keep both classes: take the same share of each label.
        by_label = {label: [h for h in held if h[1] == label] for label in (0, 1)}
        held = []
        for label, items in by_label.items():
            rng.shuffle(items)
            held += items[:max(1, round(evaluation_images * len(items) / sum(map(len, by_label.values()))))]
    missing = [p for p in calibration + [p for p, _ in held] if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images of {folds_file} are missing (e.g. {missing[0]}); build the "
                                "starter set with `gamma data starter`")
    return FoldSplit(calibration, held, str(folds_file), eval_fold)


def calibration_views(paths: Sequence[Path], policy: CropPolicy, batch: int = CALIBRATION_BATCH) -> np.ndarray:
    """All crop-policy views of the calibration images, trimmed to whole batches (the calibrator needs equal ones)."""
    views = np.concatenate([policy.views(load_rgb(p))[0] for p in paths])
    keep = max(batch, len(views) // batch * batch)
    return views[:keep]


# --------------------------------------------------------------------------- metrics
def graph_probabilities_and_masks(run: Callable[[np.ndarray], tuple], images: Sequence[np.ndarray], policy: CropPolicy,
                 batch: int = 32, progress: Callable | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Combined probability per image and the per-view head-1 masks, as a runtime computes them."""
    from ..runtime.detector import combine_probabilities

    probabilities, masks = [], []
    for image in images:
        views, _ = policy.views(image)
        outs = [run(views[i:i + batch]) for i in range(0, len(views), batch)]
        probabilities.append(combine_probabilities(np.concatenate([o[0] for o in outs])))
        masks.append(np.concatenate([o[1] for o in outs]))
        if progress:
            progress(1)
    return np.asarray(probabilities), masks


def acceptance(recipe: str, labels, p32, p8, m32, m8, seconds: float = 0.0) -> Acceptance:
    diff = np.abs(np.asarray(p32) - np.asarray(p8))
    auc32, auc8 = roc_auc_score(labels, p32), roc_auc_score(labels, p8)
    mask = float(np.mean([np.abs(a - b).mean() for a, b in zip(m32, m8)])) if m32 else 0.0
    ok = abs(auc8 - auc32) <= AUC_TOLERANCE and float(diff.mean()) <= MEAN_PROBABILITY_TOLERANCE
    return Acceptance(recipe, len(diff), auc32, auc8, float(diff.mean()), float(diff.max()), mask, ok, seconds)


# --------------------------------------------------------------------------- quantization
def _float_nodes(model, scopes: Sequence[str]) -> list[str]:
    """Names of nodes whose exporter name scope lies under one of ``scopes`` (module paths)."""
    if not scopes:
        return []
    names = []
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scope = meta.get("pkg.torch.onnx.name_scopes", "")
        if any(f"'{s}'" in scope or f"'{s}." in scope for s in scopes):
            names.append(node.name)
    return names


def _seven_bit_weights(model, which: str) -> dict[str, list[dict]]:
    """Per-channel overrides giving these weights 7 bits; depthwise convolutions do not run through the u8 x s8 GEMM.

    ``axis`` must be restated (else ONNX Runtime quantizes that tensor per-tensor): the output channels, i.e. 0 for
    Conv weights (O, I, kH, kW), the last axis for MatMul weights (K, N), and for Gemm 0 or 1 by ``transB``.
    """
    if which == "none":
        return {}
    initializers = {i.name for i in model.graph.initializer}
    overrides = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm") or len(node.input) < 2 or node.input[1] not in initializers:
            continue
        attributes = {a.name: a.i for a in node.attribute}
        if which == "gemm" and node.op_type == "Conv" and attributes.get("group", 1) != 1:
            continue
        axis = {"Conv": 0, "MatMul": -1, "Gemm": 0 if attributes.get("transB", 0) else 1}[node.op_type]
        overrides[node.input[1]] = [{"axis": axis, "reduce_range": True}]
    return overrides


class _Reader:
    """CalibrationDataReader over uint8 views (duck-typed: get_next / rewind)."""

    def __init__(self, views: np.ndarray, input_name: str, batch: int = CALIBRATION_BATCH):
        self.views, self.input_name, self.batch, self.i = views, input_name, batch, 0

    def get_next(self):
        if self.i >= len(self.views):
            return None
        chunk = self.views[self.i:self.i + self.batch]
        self.i += self.batch
        return {self.input_name: chunk}

    def rewind(self):
        self.i = 0


def quantize_int8(fp32_path: str | Path, out_path: str | Path, views: np.ndarray, recipe: Recipe = RECIPES[0]) -> dict:
    """Static QDQ quantization of the FP32 graph; returns what the manifest records about it."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    pre = out_path.with_suffix(".pre.onnx")
    # Shape inference only: no graph rewriting, so node names (and the scopes recipes use) survive.
    quant_pre_process(str(fp32_path), str(pre), skip_optimization=True, skip_symbolic_shape=True)
    model = onnx.load(str(pre))
    exclude = _float_nodes(model, recipe.keep_float)
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(views, model.graph.input[0].name)
    weight_type = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[recipe.weights]
    quant_format = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}[recipe.format]
    overrides = _seven_bit_weights(model, recipe.seven_bit)
    try:
        quantize_static(str(pre), str(out_path), reader, quant_format=quant_format, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=weight_type,
                        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=exclude,
                        calibrate_method=CalibrationMethod[recipe.calibration],
                        extra_options={"TensorQuantOverrides": overrides} if overrides else {})
    finally:
        pre.unlink(missing_ok=True)
    weight_bits = {"none": "8-bit", "gemm": "7-bit (GEMM layers), 8-bit (depthwise)", "all": "7-bit"}[recipe.seven_bit]
    return {"method": f"onnxruntime static quantization, {recipe.format.upper()}", "activations": "uint8 (asymmetric)",
            "weights": f"{recipe.weights} per-channel, {weight_bits} range", "calibration": recipe.calibration,
            "recipe": recipe.name, "recipe_note": recipe.note, "quantized_ops": list(QUANTIZED_OPS),
            "float_scopes": list(recipe.keep_float), "float_nodes": len(exclude), "calibration_views": int(len(views))}


def build_int8(fp32_path: str | Path, out_path: str | Path, policy: CropPolicy, split: FoldSplit,
               threads: int | None = None, recipes: Sequence[Recipe] = RECIPES,
               progress: Callable[[str, int], Callable | None] | None = None) -> tuple[dict | None, list[dict]]:
    """Quantize, measure against FP32 on the held-out fold, keep the first accepted recipe.

    Returns (quantization record of the kept model or None, acceptance record of every tried recipe).
    """
    from ..runtime.onnxruntime import OrtSession

    out_path = Path(out_path)
    views = calibration_views(split.calibration, policy)
    images = [load_rgb(p) for p, _ in split.evaluation]
    labels = [label for _, label in split.evaluation]
    fp32 = OrtSession(Path(fp32_path), "cpu", threads)
    bar = progress("scoring FP32 on the held-out fold", len(images)) if progress else None
    p32, m32 = graph_probabilities_and_masks(fp32.run, images, policy, progress=bar)
    tried = []
    for recipe in recipes:
        started = time.perf_counter()
        candidate = out_path.with_suffix(f".{recipe.name}.onnx")
        try:
            record = quantize_int8(fp32_path, candidate, views, recipe)
        except ValueError as exc:  # e.g. a near-constant tensor has no finite percentile histogram
            log.warning("INT8 recipe %s could not be built: %s", recipe.name, exc)
            tried.append({"recipe": recipe.name, "accepted": False, "error": f"{type(exc).__name__}: {exc}"})
            candidate.unlink(missing_ok=True)
            continue
        record.update(calibration_images=len(split.calibration), calibration_source=f"{split.folds_file}: folds != "
                      f"{split.eval_fold}")
        bar = progress(f"scoring INT8 ({recipe.name})", len(images)) if progress else None
        p8, m8 = graph_probabilities_and_masks(OrtSession(candidate, "cpu", threads).run, images, policy, progress=bar)
        result = acceptance(recipe.name, labels, p32, p8, m32, m8, time.perf_counter() - started)
        result.extra["evaluation_source"] = f"{split.folds_file}: fold {split.eval_fold} (out of fold for calibration)"
        tried.append(result.to_dict())
        log.info("INT8 recipe %s: %s", recipe.name, result.to_dict())
        if result.accepted:
            candidate.replace(out_path)
            return {**record, "acceptance": result.to_dict()}, tried
        candidate.unlink(missing_ok=True)
    return None, tried
