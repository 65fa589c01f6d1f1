"""The deployable GAMMA graph: uint8 RGB views in, calibrated outputs out.

One ``nn.Module`` wraps the trained model for every consumer that runs torch:
the ONNX export traces it, the PyTorch runtime backend runs it, Torch-TensorRT
compiles it. Preprocessing and calibration therefore live in exactly one place
and an exported graph cannot drift from the research path.

    images  (N, S, S, 3) uint8 RGB, NHWC (what the crop policy produces)
      -> float, x / 127.5 - 1, NCHW          (training's normalisation)
      -> GammaModel
      -> probability (N,)             sigmoid(logit / T), T the fitted temperature
         mask        (N, S/8, S/8)    sigmoid(head-1 logits): pixel is not authentic
         sources     (N, C, S/8, S/8) softmax(head-2 logits) over SOURCE_CLASSES

The maps leave the graph at the decoder's stride: the runtime upsamples them while
it stitches the views back at the working resolution (``CropPolicy.stitch``). Upsampling
inside the graph as well cost every backend a full-resolution resize and softmax
(64x the elements), and 1.2 MB of output per view, for no extra detail.

``dtype=torch.float16`` keeps weights and network compute in FP16 while the inputs
stay uint8 and the outputs float32 (the FP16 ONNX variant, TensorRT 11's input);
only the three output activations run in float32.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_NAME = "images"
OUTPUT_NAMES = ("probability", "mask", "sources")


class DeployableGamma(nn.Module):
    def __init__(self, model: nn.Module, temperature: float, dtype: torch.dtype = torch.float32):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"calibration temperature must be positive, got {temperature}")
        if not getattr(model.cfg, "seg_heads", False):
            raise ValueError("the deployable graph needs a model with segmentation heads (mask and sources outputs)")
        self.model = model.eval().to(dtype)
        self.dtype = dtype
        self.temperature = float(temperature)
        self.register_buffer("inv_temperature", torch.tensor(1.0 / float(temperature), dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Cast first: TensorRT accepts a uint8 network input only when a cast consumes it directly.
        x = images.to(self.dtype).permute(0, 3, 1, 2) * (1.0 / 127.5) - 1.0
        out = self.model(x)
        # The output activations run in float32 whatever the network's dtype (cheap, and the outputs are float32).
        probability = torch.sigmoid(out.logit.float() * self.inv_temperature)
        mask = torch.sigmoid(out.mask_logits[:, 0].float())
        sources = _channel_softmax(out.source_logits.float())
        return probability, mask, sources


def _channel_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1, written out: ONNX Runtime's Softmax on a non-last axis transposes the whole
    (N, C, S, S) map twice and took a fifth of the CPU time; these broadcast ops stream it once."""
    e = torch.exp(logits - logits.amax(dim=1, keepdim=True))
    return e / e.sum(dim=1, keepdim=True)


def build_deployable(checkpoint: dict, model: nn.Module, dtype: torch.dtype = torch.float32) -> DeployableGamma:
    """The wrapper for a loaded checkpoint; refuses an uncalibrated one."""
    calibration = checkpoint.get("calibration")
    if not calibration or "temperature" not in calibration:
        raise ValueError(
            "checkpoint has no calibration: export needs a released model (`gamma evaluate --release`), whose "
            "checkpoint carries the fitted temperature and verdict bands; fold checkpoints are not exportable")
    return DeployableGamma(model, calibration["temperature"], dtype)
