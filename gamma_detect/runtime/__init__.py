"""The serving side, torch-free: a typed manifest, the Detector, the ONNX Runtime and TensorRT sessions.

Everything the server (and ``gamma predict``) needs to score images with an exported
model, and nothing that needs torch or the training code: those backends are the
build side's (``gamma_detect.export``).
"""

from ..crops import ImageTooSmall
from .detector import (BACKENDS, BUILD_SIDE_BACKENDS, SERVING_BACKENDS, BackendUnavailable, Detector, Prediction,
                       combine_probabilities, default_model_path, load_detector)
from .manifest import Artifact, ArtifactDigestMismatch, EngineMismatch, Manifest, ManifestError

__all__ = ["BACKENDS", "BUILD_SIDE_BACKENDS", "SERVING_BACKENDS", "Artifact", "ArtifactDigestMismatch",
           "BackendUnavailable", "Detector", "EngineMismatch", "ImageTooSmall", "Manifest", "ManifestError",
           "Prediction", "combine_probabilities", "default_model_path", "load_detector"]
