"""The ONNX Runtime session behind the ``onnxruntime-cpu`` and ``onnxruntime-cuda`` backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract import MAX_BATCH_VIEWS


def ort_has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


class OrtSession:
    """An ONNX Runtime session; ``device`` "cpu" or "cuda" (CUDA provider, refused if it does not engage)."""

    max_batch = MAX_BATCH_VIEWS

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None):
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

    def run(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = dict(zip(self.output_names, self.session.run(None, {self.input_name: views})))
        return out["probability"], out["mask"], out["sources"]
