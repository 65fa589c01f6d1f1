"""The research backends (PyTorch eager, Torch-TensorRT) and the loader that accepts every backend.

They need torch and the model code, so they live on the build side; the serving backends
(ONNX Runtime, TensorRT) are the runtime's, and :func:`load_detector` hands those to it.
Torch is imported only inside a torch backend's session, when it is chosen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract import MAX_BATCH_VIEWS
from ..runtime import detector as runtime
from ..runtime.detector import BUILD_SIDE_BACKENDS, Detector, locate
from ..runtime.manifest import check_engine_compatible
from ..runtime.tensorrt import gpu_identity, tensorrt_version


class TorchSession:
    """The research backend: the checkpoint through the same DeployableGamma graph the export traces."""

    max_batch = MAX_BATCH_VIEWS

    def __init__(self, checkpoint: str | Path, device: str = "cpu", threads: int | None = None, amp: bool = False):
        import torch  # imported here only: nothing reaches this line unless asked for PyTorch

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

    def run(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(views)).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            out = self.graph(x)
        return tuple(t.float().cpu().numpy() for t in out)


def load_detector(manifest_or_path: str | Path | None = None, backend: str = "auto", variant: str = "fp32", *,
                  threads: int | None = None, self_check: bool = True, fallback_to_fp32: bool = False) -> Detector:
    """:func:`gamma_detect.runtime.load_detector`, plus the ``pytorch``, ``pytorch-cuda`` and ``torch-tensorrt``
    backends (and ``auto`` on a named checkpoint file)."""
    manifest, resolved, _ = locate(manifest_or_path, backend, variant)
    if resolved not in BUILD_SIDE_BACKENDS:
        return runtime.load_detector(manifest_or_path, backend, variant, threads=threads, self_check=self_check,
                                     fallback_to_fp32=fallback_to_fp32)
    if resolved == "torch-tensorrt":
        from .tensorrt import TorchTensorRTSession

        artifact = manifest.artifact(formats={"torch-tensorrt"})
        check_engine_compatible(artifact.entry, gpu_identity(), tensorrt_version())
        session = TorchTensorRTSession(manifest.verified_path(artifact))
    else:
        artifact = manifest.artifact(formats={"checkpoint"})
        session = TorchSession(manifest.verified_path(artifact), "cuda" if resolved == "pytorch-cuda" else "cpu",
                               threads)
    return Detector(manifest, artifact, session, resolved, f"{resolved}: requested")
