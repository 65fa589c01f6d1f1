"""Compact weights: the FP32 graph with its weights stored in fewer bytes, for downloads (the extension's bundle).

Each large weight tensor is stored either as int8 with one scale per output channel or as FP16, and widened back to
FP32 by a Cast (and a Mul by the scales) on constants. ONNX Runtime folds those nodes when a session loads, so the
graph then computes in FP32 like the FP32 artifact, natively and in ONNX Runtime Web alike: its numbers do not
depend on a CPU's integer kernels, and it needs no load-time self-check. What it changes is the rounding of the
weights, so it is accepted by its parity with the FP32 graph, under the FP16 artifact's bound.

Which tensors keep FP16: on calibration views (training folds), each tensor's effect on the probability when it
alone is stored in 8 bits is measured, and tensors keep FP16 in order of that effect per added byte while the file
stays within ``max_bytes`` (about: the widening nodes are not counted). Tensors under ``MIN_ELEMENTS`` (biases,
norms) stay FP32: they weigh nothing.

ONNX Runtime and numpy are needed here, not torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger("gamma.export.compact")

MIN_ELEMENTS = 1024
# The file's budget: the extension's zip is to stay under 10 MB with the model bundled, and ONNX Runtime Web's
# WASM binary with the extension's code take 4.2 MB of it (zipped; the model's bytes barely compress).
MAX_BYTES = 5_700_000
# The ops whose weight's output-channel axis is known (per-channel scales follow it); others' tensors keep FP16.
CHANNEL_AXIS: dict[str, Callable[[object, int], int]] = {
    "Conv": lambda node, ndim: 0,
    "MatMul": lambda node, ndim: ndim - 1,
    "Gemm": lambda node, ndim: 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1,
}


@dataclass(frozen=True)
class Candidate:
    name: str
    index: int            # position among the graph's initializers
    elements: int
    axis: int | None      # output-channel axis for int8; None: FP16 only


def _candidates(model) -> list[Candidate]:
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for position, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, position))
    found = []
    for index, init in enumerate(model.graph.initializer):
        elements = int(np.prod(init.dims))
        if init.data_type != 1 or elements < MIN_ELEMENTS:  # 1: FLOAT
            continue
        uses = consumers.get(init.name, [])
        axis = None
        if len(uses) == 1 and uses[0][1] == 1 and uses[0][0].op_type in CHANNEL_AXIS:
            axis = CHANNEL_AXIS[uses[0][0].op_type](uses[0][0], len(init.dims))
        found.append(Candidate(init.name, index, elements, axis))
    return found


def quantize_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per index of ``axis``: (q, scale) with w ~ q * scale."""
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    largest = np.abs(w).max(axis=reduce, keepdims=True)
    scale = np.where(largest > 0, largest / 127.0, 1.0).astype(np.float32)
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


def _widened(w: np.ndarray, candidate: Candidate, fp16: bool) -> np.ndarray:
    """The FP32 values the session will hold after folding (Cast then Mul, both exact as numpy does them)."""
    if fp16 or candidate.axis is None:
        return w.astype(np.float16).astype(np.float32)
    q, scale = quantize_per_channel(w, candidate.axis)
    return q.astype(np.float32) * scale


def _with_values(model, values: dict[int, np.ndarray]) -> bytes:
    import onnx
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for index, array in values.items():
        copy.graph.initializer[index].CopyFrom(numpy_helper.from_array(array, copy.graph.initializer[index].name))
    return copy.SerializeToString()


def _stored(model, candidates: list[Candidate], fp16: set[str]):
    """The graph with each candidate stored as int8 (+ scales) or FP16, widened by Cast/Mul nodes at the top."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    widen = []
    for c in candidates:
        init = graph.initializer[c.index]
        w = numpy_helper.to_array(init)
        if c.name in fp16 or c.axis is None:
            init.CopyFrom(numpy_helper.from_array(w.astype(np.float16), f"{c.name}.fp16"))
            widen.append(helper.make_node("Cast", [init.name], [c.name], to=TensorProto.FLOAT, name=f"{c.name}.widen"))
        else:
            q, scale = quantize_per_channel(w, c.axis)
            init.CopyFrom(numpy_helper.from_array(q, f"{c.name}.int8"))
            graph.initializer.append(numpy_helper.from_array(scale, f"{c.name}.scale"))
            widen += [helper.make_node("Cast", [init.name], [f"{c.name}.float"], to=TensorProto.FLOAT,
                                       name=f"{c.name}.widen"),
                      helper.make_node("Mul", [f"{c.name}.float", f"{c.name}.scale"], [c.name], name=f"{c.name}.scale")]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(widen + nodes)
    onnx.checker.check_model(out)
    return out


def _stored_bytes(model, candidates: list[Candidate], fp16: set[str]) -> int:
    """Serialized size with these tensors in FP16 and the other candidates in int8 (scales included)."""
    full = model.ByteSize()
    for c in candidates:
        channels = model.graph.initializer[c.index].dims[c.axis] if c.axis is not None else 0
        full -= c.elements * 4 - (c.elements * 2 if c.name in fp16 else c.elements + channels * 4)
    return full


def compact_weights(fp32_path: str | Path, out_path: str | Path, views: np.ndarray, threads: int | None = None,
                    max_bytes: int = MAX_BYTES,
                    progress: Callable[[str, int], Callable[[int], None] | None] | None = None) -> dict:
    """Write the compact graph of ``fp32_path`` to ``out_path``; returns what the manifest records about it."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(str(fp32_path))
    candidates = _candidates(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.log_severity_level = 3
    name = model.graph.input[0].name

    def probabilities(data: bytes) -> np.ndarray:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, {name: views[i:i + 32]})[0] for i in range(0, len(views), 32)])

    reference = probabilities(model.SerializeToString())
    weights = {c.index: numpy_helper.to_array(model.graph.initializer[c.index]) for c in candidates}
    # Each int8-able tensor's own effect (mean |dp| when it alone is int8), per byte FP16 would add.
    effect = {}
    advance = progress("each tensor's int8 effect", len(candidates)) if progress else None
    for c in candidates:
        if c.axis is not None:
            trial = probabilities(_with_values(model, {c.index: _widened(weights[c.index], c, fp16=False)}))
            effect[c.name] = float(np.abs(trial - reference).mean()) / c.elements
        if advance:
            advance(1)
    order = sorted(effect, key=lambda n: -effect[n])

    # FP16 for the tensors that gain most per added byte, while the file stays within the budget.
    fp16 = {c.name for c in candidates if c.axis is None}
    size = _stored_bytes(model, candidates, fp16)
    by_name = {c.name: c for c in candidates}
    for tensor in order:
        if size + by_name[tensor].elements <= max_bytes:
            fp16.add(tensor)
            size += by_name[tensor].elements
    values = {c.index: _widened(weights[c.index], c, c.name in fp16) for c in candidates}
    calibration = np.abs(probabilities(_with_values(model, values)) - reference)
    onnx.save(_stored(model, candidates, fp16), str(out_path))
    int8 = [c for c in candidates if c.axis is not None and c.name not in fp16]
    stored = {"int8": sum(c.elements for c in int8), "fp16": sum(c.elements for c in candidates) -
              sum(c.elements for c in int8)}
    log.info("compact weights: %d int8, %d fp16 tensors, %.1f MB; calibration max |dp| %.4f", len(int8),
             len(candidates) - len(int8), Path(out_path).stat().st_size / 1e6, calibration.max())
    return {"method": "weights stored as int8 (symmetric, one scale per output channel) or fp16, widened to fp32 "
                      "by constant Cast/Mul nodes that ONNX Runtime folds at load; compute is fp32",
            "int8_tensors": len(int8), "fp16_tensors": len(candidates) - len(int8),
            "int8_weights": stored["int8"], "fp16_weights": stored["fp16"],
            "fp32_below_elements": MIN_ELEMENTS,
            "choice": "tensors keep fp16 in order of their own int8 effect on the probability per added byte, "
                      "while the file stays within the budget",
            "max_bytes": max_bytes,
            "calibration_max_abs_probability_diff": round(float(calibration.max()), 6),
            "calibration_mean_abs_probability_diff": round(float(calibration.mean()), 6),
            "calibration_views": int(len(views))}
