"""The versions of the libraries a build or a benchmark ran with, recorded beside its numbers.

One list for the manifest's ``build.libraries`` and ``gamma bench``'s report, so both say the same
thing about the same install. Optional libraries (TensorRT, onnxscript) are listed only where installed.
"""

from __future__ import annotations

import importlib.util

from .. import __version__

LIBRARIES = ("numpy", "onnxruntime", "torch", "onnx", "onnxscript", "tensorrt", "torch_tensorrt", "cv2")


def library_versions() -> dict[str, str]:
    """``{"gamma-detect": ..., module: version}`` for every library of :data:`LIBRARIES` that is installed."""
    versions = {"gamma-detect": __version__}
    for name in LIBRARIES:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            versions[name] = __import__(name).__version__
        except Exception as exc:  # noqa: BLE001 - a broken optional install is reported, not fatal
            versions[name] = f"unusable ({type(exc).__name__})"
    return versions
