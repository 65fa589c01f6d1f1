"""The build side: a released checkpoint -> ONNX / INT8 / FP16 / TensorRT artifacts and their manifest.

``load_detector`` here is the runtime's plus the torch backends (PyTorch eager, Torch-TensorRT).
"""

from .backends import load_detector

__all__ = ["load_detector"]
